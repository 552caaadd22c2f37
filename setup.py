"""Builds the order book's compiled core in place: ``python setup.py build_ext --inplace``.

The project is not an installable package; this file only builds the C extension. Without it
``orderbook`` uses its pure Python implementation.
"""

from setuptools import Extension, setup

setup(
    name="orderbook-core",
    version="0",
    packages=[],
    py_modules=[],
    ext_modules=[
        Extension(
            "orderbook._cbook",
            sources=["orderbook/_cbook.c"],
            extra_compile_args=["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
        )
    ],
)
