/* Compiled hot path of the order book (see orderbook/pybook.py for the layout).
 *
 * The C type holds exactly the objects PyOrderBook keeps in its slots (level dicts, sorted key
 * lists, sequence counter, counters) and implements only the hot calls: update() for valid
 * float input that adds, changes or deletes an entry without crossing the book, and the best
 * price reads. Everything else (bad input, errors and their counters, crossing levels, reads,
 * match, walk) is the shared Python code in BookLogic: update() hands such calls to
 * self._py_update, so both implementations have one behaviour.
 *
 * Build: python setup.py build_ext --inplace
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>

typedef struct {
    PyObject_HEAD
    PyObject *bk;     /* list of bid prices, ascending: best last */
    PyObject *ak;     /* list of negated ask prices, ascending: best last */
    PyObject *bl;     /* dict price -> dict broker -> [size, seq] */
    PyObject *al;
    PyObject *counts; /* dict of counters, updated by the Python code */
    PyObject *cross_policy;
    PyObject *instrument;
    long long seq;
} Core;

static PyObject *s_bid;        /* interned "bid" */
static PyObject *s_ask;        /* interned "ask" */
static PyObject *s_py_update;  /* interned "_py_update" */
static PyObject *s_py_best;    /* interned "_py_best" */

/* 1 bid, 2 ask, 0 anything else (the Python code then raises the error). */
static inline int side_of(PyObject *side) {
    if (side == s_bid) return 1;
    if (side == s_ask) return 2;
    if (PyUnicode_CheckExact(side)) {
        if (PyUnicode_Compare(side, s_bid) == 0) return 1;
        if (PyUnicode_Compare(side, s_ask) == 0) return 2;
    }
    return 0;
}

static PyObject *fallback(Core *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *call[5] = {(PyObject *)self, NULL, NULL, NULL, NULL};
    for (Py_ssize_t i = 0; i < nargs && i < 4; i++) call[i + 1] = args[i];
    return PyObject_VectorcallMethod(s_py_update, call, (size_t)(nargs < 4 ? nargs : 4) + 1, NULL);
}

/* First index in the ascending float list whose value is >= key (bisect_left). */
static Py_ssize_t bisect_left(PyObject *list, double key) {
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(list);
    PyObject **items = ((PyListObject *)list)->ob_item;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (PyFloat_AS_DOUBLE(items[mid]) < key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static PyObject *new_entry(PyObject *size, long long seq) {
    PyObject *entry = PyList_New(2);
    if (entry == NULL) return NULL;
    PyObject *s = PyLong_FromLongLong(seq);
    if (s == NULL) {
        Py_DECREF(entry);
        return NULL;
    }
    Py_INCREF(size);
    PyList_SET_ITEM(entry, 0, size);
    PyList_SET_ITEM(entry, 1, s);
    return entry;
}

static PyObject *Core_update(Core *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || self->bl == NULL || self->al == NULL || self->bk == NULL || self->ak == NULL)
        return fallback(self, args, nargs);
    PyObject *side = args[0], *broker = args[1], *price = args[2], *size = args[3];
    int which = side_of(side);
    if (!which || !PyUnicode_CheckExact(broker) || PyUnicode_GET_LENGTH(broker) == 0 || !PyFloat_CheckExact(price) ||
        !PyFloat_CheckExact(size))
        return fallback(self, args, nargs);
    double p = PyFloat_AS_DOUBLE(price), s = PyFloat_AS_DOUBLE(size);
    if (!(p > 0.0 && p < INFINITY) || !(s >= 0.0 && s < INFINITY)) return fallback(self, args, nargs);
    PyObject *levels = which == 1 ? self->bl : self->al;
    PyObject *level = PyDict_GetItemWithError(levels, price); /* borrowed */
    if (level == NULL && PyErr_Occurred()) return NULL;
    if (s == 0.0) { /* delete */
        if (level == NULL) return fallback(self, args, nargs);
        PyObject *entry = PyDict_GetItemWithError(level, broker);
        if (entry == NULL) {
            if (PyErr_Occurred()) return NULL;
            return fallback(self, args, nargs); /* unknown level: the Python code raises and counts */
        }
        if (PyDict_DelItem(level, broker) < 0) return NULL;
        if (PyDict_GET_SIZE(level) == 0) {
            PyObject *keys = which == 1 ? self->bk : self->ak;
            double key = which == 1 ? p : -p;
            Py_ssize_t i = bisect_left(keys, key);
            if (PyDict_DelItem(levels, price) < 0) return NULL;
            if (i < PyList_GET_SIZE(keys) && PyFloat_AS_DOUBLE(PyList_GET_ITEM(keys, i)) == key) {
                if (PyList_SetSlice(keys, i, i + 1, NULL) < 0) return NULL;
            }
        }
        Py_RETURN_NONE;
    }
    if (level != NULL) {
        PyObject *entry = PyDict_GetItemWithError(level, broker);
        if (entry != NULL && PyList_CheckExact(entry) && PyList_GET_SIZE(entry) == 2 &&
            PyFloat_Check(PyList_GET_ITEM(entry, 0))) {
            if (s <= PyFloat_AS_DOUBLE(PyList_GET_ITEM(entry, 0))) {
                /* a smaller size keeps its place in the queue */
                Py_INCREF(size);
                PyObject *old = PyList_GET_ITEM(entry, 0);
                PyList_SET_ITEM(entry, 0, size);
                Py_DECREF(old);
                Py_RETURN_NONE;
            }
            /* a larger size goes to the back of the queue with a new sequence number */
            if (PyDict_DelItem(level, broker) < 0) return NULL;
        } else if (entry != NULL) {
            return fallback(self, args, nargs);
        } else if (PyErr_Occurred()) {
            return NULL;
        }
        PyObject *fresh = new_entry(size, self->seq + 1);
        if (fresh == NULL) return NULL;
        int rc = PyDict_SetItem(level, broker, fresh);
        Py_DECREF(fresh);
        if (rc < 0) return NULL;
        self->seq++;
        Py_RETURN_NONE;
    }
    /* a new price level: crossing levels are the Python code's business */
    PyObject *okeys = which == 1 ? self->ak : self->bk;
    Py_ssize_t on = PyList_GET_SIZE(okeys);
    if (on > 0) {
        double obest = PyFloat_AS_DOUBLE(PyList_GET_ITEM(okeys, on - 1));
        if (which == 1 ? -obest <= p : obest >= p) return fallback(self, args, nargs);
    }
    PyObject *keys = which == 1 ? self->bk : self->ak;
    double key = which == 1 ? p : -p;
    PyObject *keyobj = which == 1 ? (Py_INCREF(price), price) : PyFloat_FromDouble(key);
    if (keyobj == NULL) return NULL;
    PyObject *fresh = new_entry(size, self->seq + 1);
    PyObject *newlevel = PyDict_New();
    if (fresh == NULL || newlevel == NULL || PyDict_SetItem(newlevel, broker, fresh) < 0 ||
        PyDict_SetItem(levels, price, newlevel) < 0) {
        Py_XDECREF(fresh);
        Py_XDECREF(newlevel);
        Py_DECREF(keyobj);
        return NULL;
    }
    Py_DECREF(fresh);
    Py_DECREF(newlevel);
    /* bisect_right, as insort does (keys are unique, so either would do) */
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(keys);
    PyObject **items = ((PyListObject *)keys)->ob_item;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (key < PyFloat_AS_DOUBLE(items[mid])) hi = mid;
        else lo = mid + 1;
    }
    int rc = PyList_Insert(keys, lo, keyobj);
    Py_DECREF(keyobj);
    if (rc < 0) {
        PyDict_DelItem(levels, price);
        return NULL;
    }
    self->seq++;
    Py_RETURN_NONE;
}

static inline PyObject *best_of(PyObject *keys, int negate) {
    if (keys == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "order book not initialised");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (n == 0) Py_RETURN_NONE;
    PyObject *top = PyList_GET_ITEM(keys, n - 1);
    if (!negate) {
        Py_INCREF(top);
        return top;
    }
    return PyFloat_FromDouble(-PyFloat_AS_DOUBLE(top));
}

static PyObject *Core_best_bid(Core *self, PyObject *Py_UNUSED(ignored)) { return best_of(self->bk, 0); }

static PyObject *Core_best_ask(Core *self, PyObject *Py_UNUSED(ignored)) { return best_of(self->ak, 1); }

static PyObject *Core_best(Core *self, PyObject *side) {
    int which = side_of(side);
    if (which == 1) return best_of(self->bk, 0);
    if (which == 2) return best_of(self->ak, 1);
    PyObject *call[2] = {(PyObject *)self, side};
    return PyObject_VectorcallMethod(s_py_best, call, 2, NULL);
}

static int Core_traverse(Core *self, visitproc visit, void *arg) {
    Py_VISIT(self->bk);
    Py_VISIT(self->ak);
    Py_VISIT(self->bl);
    Py_VISIT(self->al);
    Py_VISIT(self->counts);
    Py_VISIT(self->cross_policy);
    Py_VISIT(self->instrument);
    return 0;
}

static int Core_clear(Core *self) {
    Py_CLEAR(self->bk);
    Py_CLEAR(self->ak);
    Py_CLEAR(self->bl);
    Py_CLEAR(self->al);
    Py_CLEAR(self->counts);
    Py_CLEAR(self->cross_policy);
    Py_CLEAR(self->instrument);
    return 0;
}

static void Core_dealloc(Core *self) {
    PyObject_GC_UnTrack(self);
    Core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Core_methods[] = {
    {"update", (PyCFunction)(void (*)(void))Core_update, METH_FASTCALL,
     "update(side, broker, price, size): set the broker's size at the price; 0.0 deletes."},
    {"best_bid", (PyCFunction)Core_best_bid, METH_NOARGS, "Best bid price, or None."},
    {"best_ask", (PyCFunction)Core_best_ask, METH_NOARGS, "Best ask price, or None."},
    {"best", (PyCFunction)Core_best, METH_O, "best(side): best price of 'bid' or 'ask', or None."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Core_members[] = {
    {"_bk", T_OBJECT_EX, offsetof(Core, bk), 0, NULL},
    {"_ak", T_OBJECT_EX, offsetof(Core, ak), 0, NULL},
    {"_bl", T_OBJECT_EX, offsetof(Core, bl), 0, NULL},
    {"_al", T_OBJECT_EX, offsetof(Core, al), 0, NULL},
    {"_counts", T_OBJECT_EX, offsetof(Core, counts), 0, NULL},
    {"cross_policy", T_OBJECT_EX, offsetof(Core, cross_policy), 0, NULL},
    {"instrument", T_OBJECT_EX, offsetof(Core, instrument), 0, NULL},
    {"_seq", T_LONGLONG, offsetof(Core, seq), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static int Core_setattro(PyObject *self, PyObject *name, PyObject *value) {
    /* the hot path relies on the exact types of the containers */
    if (value != NULL && PyUnicode_Check(name)) {
        const char *n = PyUnicode_AsUTF8(name);
        if (n == NULL) return -1;
        if ((strcmp(n, "_bk") == 0 || strcmp(n, "_ak") == 0) && !PyList_CheckExact(value)) {
            PyErr_SetString(PyExc_TypeError, "_bk and _ak must be lists");
            return -1;
        }
        if ((strcmp(n, "_bl") == 0 || strcmp(n, "_al") == 0) && !PyDict_CheckExact(value)) {
            PyErr_SetString(PyExc_TypeError, "_bl and _al must be dicts");
            return -1;
        }
    }
    return PyObject_GenericSetAttr(self, name, value);
}

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "live.orderbook._cbook.Core",
    .tp_doc = PyDoc_STR("Compiled storage and hot path of the order book; use live.orderbook.CompiledOrderBook."),
    .tp_basicsize = sizeof(Core),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_clear,
    .tp_setattro = Core_setattro,
    .tp_methods = Core_methods,
    .tp_members = Core_members,
};

static struct PyModuleDef cbook_module = {
    PyModuleDef_HEAD_INIT, .m_name = "live.orderbook._cbook",
    .m_doc = "Compiled hot path of live.orderbook.", .m_size = -1,
};

PyMODINIT_FUNC PyInit__cbook(void) {
    s_bid = PyUnicode_InternFromString("bid");
    s_ask = PyUnicode_InternFromString("ask");
    s_py_update = PyUnicode_InternFromString("_py_update");
    s_py_best = PyUnicode_InternFromString("_py_best");
    if (!s_bid || !s_ask || !s_py_update || !s_py_best) return NULL;
    if (PyType_Ready(&CoreType) < 0) return NULL;
    PyObject *m = PyModule_Create(&cbook_module);
    if (m == NULL) return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
