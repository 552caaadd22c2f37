"""Builds the compiled cores in place: ``python setup.py build_ext --inplace``.

The project is not an installable package; this file only builds the C extensions: the order book's
core (``orderbook/_cbook.c``) and the Kraken book's (``marketdata/feeds/_cfeeds.c``). Without them
``orderbook`` and ``marketdata.feeds.kraken`` use their pure Python implementations (the latter
says so in a warning).
"""

from setuptools import Extension, setup

FLAGS = ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]

setup(
    name="orderbook-core",
    version="0",
    packages=[],
    py_modules=[],
    ext_modules=[
        Extension("orderbook._cbook", sources=["orderbook/_cbook.c"], extra_compile_args=FLAGS),
        Extension("marketdata.feeds._cfeeds", sources=["marketdata/feeds/_cfeeds.c"], extra_compile_args=FLAGS),
    ],
)
