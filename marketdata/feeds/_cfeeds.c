/* Compiled hot paths of the feed adapters: the sorted books (venue.SortedBookLogic, and
 * kraken.KrakenBookLogic, which also keeps each level's checksum text) and the RFC 3339 timestamp
 * reader (venue.iso_to_us, at the end).
 *
 * The C type holds exactly the objects the pure Python books keep in their slots (the tick -> size
 * dicts, each side's sorted keys, (price, size) levels and, for Kraken, checksum texts; the depth
 * caches) and implements only the hot calls, for the usual input:
 *   - set_bid / set_ask(tick, size): a tick of an int under 2**53, a float size, and a level text
 *     written from integers (the quantity's digits tell the float exactly);
 *   - checksum(): the CRC32 of the top 10 texts a side, when they are ASCII str;
 *   - quote(broker, instrument, ts_broker, ts_recv, seq[, levels]).
 * Anything else (other types, a tick past 2**53, a quantity too large or too precise for a float to
 * tell its text, a text given, keywords, a state someone changed by hand) goes to the Python method
 * (_py_set_bid, _py_set_ask, _py_checksum, _py_quote), which works on the same objects: both
 * implementations have one behaviour (marketdata/tests/test_feed_kraken_compiled.py runs them side
 * by side). A call is handed over before it changes anything.
 *
 * Build: python setup.py build_ext --inplace (scripts/_common.sh does it when the source changes).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    PyObject *bids;      /* dict tick -> size */
    PyObject *asks;
    PyObject *scale;     /* int: 10**price_precision */
    PyObject *bid_keys;  /* list of -tick, best bid first */
    PyObject *bid_lvls;  /* list of (price, size), same order */
    PyObject *bid_texts; /* list of checksum texts, same order; None: a book without texts */
    PyObject *ask_keys;  /* list of tick, best ask first */
    PyObject *ask_lvls;
    PyObject *ask_texts;
    PyObject *bid_depth; /* tuple of the quoted levels, or None: to build again */
    PyObject *ask_depth;
    PyObject *depth_n;   /* int: levels the cached depths hold */
    PyObject *qty_format;
    double qty_scale;    /* 10.0**size_precision */
    double qty_limit;    /* 2**51 / 10**size_precision */
    char inexact;
} Core;

static PyObject *s_py_set_bid, *s_py_set_ask, *s_py_checksum, *s_py_quote;

/* The normalised quote: made by storing its slots (as venue.quote_new does in Python) when
 * configure() was given a Quote whose layout it could read, else by calling quote_new. */
#define QUOTE_FIELDS 11
static PyTypeObject *quote_type = NULL;
static PyObject *quote_new = NULL;
static Py_ssize_t quote_offsets[QUOTE_FIELDS];
static int quote_direct = 0;
static PyObject *default_levels = NULL; /* venue.DEPTH_LEVELS */

static const char *const quote_names[QUOTE_FIELDS] = {
    "broker", "instrument", "bid", "ask", "bid_size", "ask_size", "ts_broker", "ts_recv", "seq", "depth", "account",
};

/* ---- CRC-32 (IEEE 802.3, reflected, as zlib.crc32), slicing by 8 ---- */

static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[k][n] = c;
        }
    }
}

/* crc is the running value, already inverted (start with 0xFFFFFFFF, invert at the end). */
static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t len) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len >= 8) {
        uint32_t one, two;
        memcpy(&one, p, 4);
        memcpy(&two, p + 4, 4);
        one ^= crc;
        crc = crc_table[7][one & 0xff] ^ crc_table[6][(one >> 8) & 0xff] ^ crc_table[5][(one >> 16) & 0xff] ^
              crc_table[4][one >> 24] ^ crc_table[3][two & 0xff] ^ crc_table[2][(two >> 8) & 0xff] ^
              crc_table[1][(two >> 16) & 0xff] ^ crc_table[0][two >> 24];
        p += 8;
        len -= 8;
    }
#endif
    while (len--) crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

/* ---- helpers ---- */

/* An exact int that fits in a long long: 1 and its value; else 0 (no error left set). */
static inline int int64_of(PyObject *o, long long *out) {
    if (!PyLong_CheckExact(o)) return 0;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) return 0;
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *out = v;
    return 1;
}

#define EXACT_DOUBLE 9007199254740992LL /* 2**53: below it an int is exactly a double */

static PyObject *hand_over(PyObject *self, PyObject *name, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *small[8];
    PyObject **call = small;
    if (nargs + nkw + 1 > 8) {
        call = PyMem_Malloc((size_t)(nargs + nkw + 1) * sizeof(PyObject *));
        if (call == NULL) return PyErr_NoMemory();
    }
    call[0] = self;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++) call[i + 1] = args[i];
    PyObject *r = PyObject_VectorcallMethod(name, call, (size_t)(nargs + 1), kwnames);
    if (call != small) PyMem_Free(call);
    return r;
}

/* Decimal digits of v (>= 0) written at p; returns how many. */
static inline int put_digits(char *p, unsigned long long v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
    return n;
}

/* ---- set_bid / set_ask ---- */

static PyObject *set_level(Core *self, int bid, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *name = bid ? s_py_set_bid : s_py_set_ask;
    if (nargs != 2 || kwnames != NULL) return hand_over((PyObject *)self, name, args, nargs, kwnames);
    PyObject *tick = args[0], *size = args[1];
    PyObject *keys = bid ? self->bid_keys : self->ask_keys;
    PyObject *lvls = bid ? self->bid_lvls : self->ask_lvls;
    PyObject *texts = bid ? self->bid_texts : self->ask_texts;
    PyObject *side = bid ? self->bids : self->asks;
    int with_texts = texts != Py_None; /* else a SortedBook: no texts, any float size is stored as it is */
    long long t, sc, dn;
    if (keys == NULL || lvls == NULL || texts == NULL || side == NULL || self->scale == NULL ||
        self->depth_n == NULL || !int64_of(tick, &t) || t >= EXACT_DOUBLE || t <= -EXACT_DOUBLE ||
        !PyFloat_CheckExact(size) || !int64_of(self->scale, &sc) || sc <= 0 || sc >= EXACT_DOUBLE ||
        !int64_of(self->depth_n, &dn))
        return hand_over((PyObject *)self, name, args, nargs, NULL);
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (PyList_GET_SIZE(lvls) != n || (with_texts && PyList_GET_SIZE(texts) != n))
        return hand_over((PyObject *)self, name, args, nargs, NULL);
    long long key = bid ? -t : t, v;
    PyObject **items = ((PyListObject *)keys)->ob_item;
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) { /* bisect_left */
        Py_ssize_t mid = (lo + hi) / 2;
        if (!int64_of(items[mid], &v)) return hand_over((PyObject *)self, name, args, nargs, NULL);
        if (v < key) lo = mid + 1;
        else hi = mid;
    }
    Py_ssize_t i = lo;
    int found = 0;
    if (i < n) {
        if (!int64_of(items[i], &v)) return hand_over((PyObject *)self, name, args, nargs, NULL);
        found = v == key;
    }
    double s = PyFloat_AS_DOUBLE(size);
    if (s > 0) {
        /* The text from integers when round(size * 10**places) tells the float exactly (see
         * KrakenBook); otherwise the Python code writes it from the float's digits. */
        double qs = self->qty_scale, r = 0;
        if (with_texts) {
            if (!(s < self->qty_limit)) return hand_over((PyObject *)self, name, args, nargs, NULL);
            r = nearbyint(s * qs); /* round(): half to even */
            if (!(r >= 0 && r < (double)EXACT_DOUBLE) || r / qs != s)
                return hand_over((PyObject *)self, name, args, nargs, NULL);
        }
        if (found) {
            PyObject *old = PyList_GET_ITEM(lvls, i);
            if (!PyTuple_CheckExact(old) || PyTuple_GET_SIZE(old) != 2 || !PyFloat_CheckExact(PyTuple_GET_ITEM(old, 1)))
                return hand_over((PyObject *)self, name, args, nargs, NULL);
            if (PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(old, 1)) == s) Py_RETURN_NONE; /* same float, same text */
        }
        PyObject *text = Py_None;
        Py_INCREF(text);
        if (with_texts) {
            char buf[48];
            int len = 0;
            if (t < 0) {
                buf[len++] = '-';
                len += put_digits(buf + len, (unsigned long long)(-t));
            } else if (t > 0) {
                len += put_digits(buf + len, (unsigned long long)t);
            } /* tick 0: "0".lstrip("0") is empty */
            len += put_digits(buf + len, (unsigned long long)r);
            Py_SETREF(text, PyUnicode_New(len, 127));
            if (text == NULL) return NULL;
            memcpy(PyUnicode_1BYTE_DATA(text), buf, (size_t)len);
        }
        PyObject *price = PyFloat_FromDouble((double)t / (double)sc); /* tick / scale, as Python divides */
        if (price == NULL) {
            Py_DECREF(text);
            return NULL;
        }
        Py_INCREF(size);
        PyObject *lvl = PyTuple_Pack(2, price, size);
        Py_DECREF(price);
        Py_DECREF(size);
        if (lvl == NULL) {
            Py_DECREF(text);
            return NULL;
        }
        if (found) {
            PyList_SetItem(lvls, i, lvl); /* steals, drops the old one */
            if (with_texts) PyList_SetItem(texts, i, text);
            else Py_DECREF(text);
        } else {
            PyObject *keyobj = bid ? PyLong_FromLongLong(-t) : (Py_INCREF(tick), tick);
            int rc = keyobj == NULL ? -1 : PyList_Insert(keys, i, keyobj);
            Py_XDECREF(keyobj);
            if (rc == 0) rc = PyList_Insert(lvls, i, lvl);
            if (rc == 0 && with_texts) rc = PyList_Insert(texts, i, text);
            Py_DECREF(lvl);
            Py_DECREF(text);
            if (rc < 0) return NULL;
        }
        if (PyDict_SetItem(side, tick, size) < 0) return NULL;
    } else if (found) {
        if (PyList_SetSlice(keys, i, i + 1, NULL) < 0 || PyList_SetSlice(lvls, i, i + 1, NULL) < 0 ||
            (with_texts && PyList_SetSlice(texts, i, i + 1, NULL) < 0) || PyDict_DelItem(side, tick) < 0)
            return NULL;
    } else {
        Py_RETURN_NONE;
    }
    if (i < dn) {
        PyObject **cache = bid ? &self->bid_depth : &self->ask_depth;
        PyObject *old = *cache;
        Py_INCREF(Py_None);
        *cache = Py_None;
        Py_XDECREF(old);
    }
    Py_RETURN_NONE;
}

static PyObject *Core_set_bid(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    return set_level(self, 1, args, nargs, kwnames);
}

static PyObject *Core_set_ask(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    return set_level(self, 0, args, nargs, kwnames);
}

/* ---- checksum ---- */

static PyObject *Core_checksum(Core *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *sides[2] = {self->ask_texts, self->bid_texts};
    for (int s = 0; s < 2; s++) { /* first every text is checked: then nothing is half done */
        if (sides[s] == NULL || !PyList_CheckExact(sides[s]))  /* None: a book without texts */
            return hand_over((PyObject *)self, s_py_checksum, NULL, 0, NULL);
        Py_ssize_t n = PyList_GET_SIZE(sides[s]);
        for (Py_ssize_t i = 0; i < n && i < 10; i++) {
            PyObject *text = PyList_GET_ITEM(sides[s], i);
            if (!PyUnicode_CheckExact(text) || PyUnicode_READY(text) < 0 || !PyUnicode_IS_ASCII(text)) {
                PyErr_Clear();
                return hand_over((PyObject *)self, s_py_checksum, NULL, 0, NULL);
            }
        }
    }
    /* The CRC of the joined texts, one text after the other: ASCII str is its own UTF-8. */
    uint32_t crc = 0xFFFFFFFFu;
    for (int s = 0; s < 2; s++) {
        Py_ssize_t n = PyList_GET_SIZE(sides[s]);
        for (Py_ssize_t i = 0; i < n && i < 10; i++) {
            PyObject *text = PyList_GET_ITEM(sides[s], i);
            crc = crc_update(crc, PyUnicode_1BYTE_DATA(text), (size_t)PyUnicode_GET_LENGTH(text));
        }
    }
    return PyLong_FromUnsignedLong((unsigned long)(crc ^ 0xFFFFFFFFu));
}

/* ---- quote ---- */

static PyObject *make_quote(PyObject *const *fields) {
    if (!quote_direct) return PyObject_Vectorcall(quote_new, fields, QUOTE_FIELDS, NULL);
    PyObject *q = quote_type->tp_alloc(quote_type, 0);
    if (q == NULL) return NULL;
    for (int k = 0; k < QUOTE_FIELDS; k++) {
        Py_INCREF(fields[k]);
        *(PyObject **)((char *)q + quote_offsets[k]) = fields[k];
    }
    return q;
}

/* tuple(lvls[:levels]) */
static PyObject *head(PyObject *lvls, long long levels) {
    Py_ssize_t n = PyList_GET_SIZE(lvls);
    if (levels < n) n = (Py_ssize_t)levels;
    PyObject *t = PyTuple_New(n);
    if (t == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(lvls, i);
        Py_INCREF(item);
        PyTuple_SET_ITEM(t, i, item);
    }
    return t;
}

static inline int level_ok(PyObject *lvl) { return PyTuple_CheckExact(lvl) && PyTuple_GET_SIZE(lvl) == 2; }

static PyObject *Core_quote(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    if (kwnames != NULL || nargs < 5 || nargs > 6 || quote_new == NULL || default_levels == NULL)
        return hand_over((PyObject *)self, s_py_quote, args, nargs, kwnames);
    PyObject *levels = nargs == 6 ? args[5] : default_levels;
    long long lv, dn;
    if (!int64_of(levels, &lv) || lv < 0 || self->depth_n == NULL || !int64_of(self->depth_n, &dn) ||
        self->bid_lvls == NULL || self->ask_lvls == NULL || self->bid_depth == NULL || self->ask_depth == NULL)
        return hand_over((PyObject *)self, s_py_quote, args, nargs, NULL);
    int fresh = lv != dn; /* another depth asked for: both sides made again */
    PyObject *bd = fresh ? Py_None : self->bid_depth, *ad = fresh ? Py_None : self->ask_depth;
    /* What the quote will read, checked before anything changes. */
    if ((bd != Py_None && !PyTuple_CheckExact(bd)) || (ad != Py_None && !PyTuple_CheckExact(ad)))
        return hand_over((PyObject *)self, s_py_quote, args, nargs, NULL);
    PyObject *b0 = NULL, *a0 = NULL;
    if (bd == Py_None ? lv > 0 && PyList_GET_SIZE(self->bid_lvls) > 0 : PyTuple_GET_SIZE(bd) > 0)
        b0 = bd == Py_None ? PyList_GET_ITEM(self->bid_lvls, 0) : PyTuple_GET_ITEM(bd, 0);
    if (ad == Py_None ? lv > 0 && PyList_GET_SIZE(self->ask_lvls) > 0 : PyTuple_GET_SIZE(ad) > 0)
        a0 = ad == Py_None ? PyList_GET_ITEM(self->ask_lvls, 0) : PyTuple_GET_ITEM(ad, 0);
    if ((b0 != NULL && !level_ok(b0)) || (a0 != NULL && !level_ok(a0)))
        return hand_over((PyObject *)self, s_py_quote, args, nargs, NULL);
    if (fresh) {
        PyObject *old = self->depth_n;
        Py_INCREF(levels);
        self->depth_n = levels;
        Py_DECREF(old);
    }
    if (bd == Py_None) {
        PyObject *t = head(self->bid_lvls, lv);
        if (t == NULL) return NULL;
        Py_SETREF(self->bid_depth, t);
        bd = t;
    }
    if (ad == Py_None) {
        PyObject *t = head(self->ask_lvls, lv);
        if (t == NULL) return NULL;
        Py_SETREF(self->ask_depth, t);
        ad = t;
    }
    if (b0 == NULL || a0 == NULL) Py_RETURN_NONE;
    PyObject *depth = PyTuple_Pack(2, bd, ad);
    if (depth == NULL) return NULL;
    PyObject *account = PyLong_FromLong(0);
    PyObject *fields[QUOTE_FIELDS] = {
        args[0], args[1], PyTuple_GET_ITEM(b0, 0), PyTuple_GET_ITEM(a0, 0), PyTuple_GET_ITEM(b0, 1),
        PyTuple_GET_ITEM(a0, 1), args[2], args[3], args[4], depth, account,
    };
    PyObject *q = make_quote(fields);
    Py_DECREF(depth);
    Py_DECREF(account);
    return q;
}

/* ---- type ---- */

static int Core_traverse(Core *self, visitproc visit, void *arg) {
    Py_VISIT(self->bids);
    Py_VISIT(self->asks);
    Py_VISIT(self->scale);
    Py_VISIT(self->bid_keys);
    Py_VISIT(self->bid_lvls);
    Py_VISIT(self->bid_texts);
    Py_VISIT(self->ask_keys);
    Py_VISIT(self->ask_lvls);
    Py_VISIT(self->ask_texts);
    Py_VISIT(self->bid_depth);
    Py_VISIT(self->ask_depth);
    Py_VISIT(self->depth_n);
    Py_VISIT(self->qty_format);
    return 0;
}

static int Core_clear(Core *self) {
    Py_CLEAR(self->bids);
    Py_CLEAR(self->asks);
    Py_CLEAR(self->scale);
    Py_CLEAR(self->bid_keys);
    Py_CLEAR(self->bid_lvls);
    Py_CLEAR(self->bid_texts);
    Py_CLEAR(self->ask_keys);
    Py_CLEAR(self->ask_lvls);
    Py_CLEAR(self->ask_texts);
    Py_CLEAR(self->bid_depth);
    Py_CLEAR(self->ask_depth);
    Py_CLEAR(self->depth_n);
    Py_CLEAR(self->qty_format);
    return 0;
}

static void Core_dealloc(Core *self) {
    PyObject_GC_UnTrack(self);
    Core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Core_setattro(PyObject *self, PyObject *name, PyObject *value) {
    /* the hot path relies on the exact types of the containers */
    if (value != NULL && PyUnicode_Check(name)) {
        const char *n = PyUnicode_AsUTF8(name);
        if (n == NULL) return -1;
        if (n[0] == '_' && (strncmp(n, "_bid_", 5) == 0 || strncmp(n, "_ask_", 5) == 0) &&
            (strcmp(n + 5, "keys") == 0 || strcmp(n + 5, "lvls") == 0) && !PyList_CheckExact(value)) {
            PyErr_Format(PyExc_TypeError, "%s must be a list", n);
            return -1;
        }
        if (n[0] == '_' && (strcmp(n, "_bid_texts") == 0 || strcmp(n, "_ask_texts") == 0) &&
            !PyList_CheckExact(value) && value != Py_None) {
            PyErr_Format(PyExc_TypeError, "%s must be a list or None", n);
            return -1;
        }
        if ((strcmp(n, "bids") == 0 || strcmp(n, "asks") == 0) && !PyDict_CheckExact(value)) {
            PyErr_Format(PyExc_TypeError, "%s must be a dict", n);
            return -1;
        }
    }
    return PyObject_GenericSetAttr(self, name, value);
}

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)

static PyMethodDef Core_methods[] = {
    {"set_bid", (PyCFunction)(void (*)(void))Core_set_bid, FASTKW, "set_bid(tick, size, text=None)"},
    {"set_ask", (PyCFunction)(void (*)(void))Core_set_ask, FASTKW, "set_ask(tick, size, text=None)"},
    {"checksum", (PyCFunction)Core_checksum, METH_NOARGS, "Kraken's CRC32 of the top 10 level texts a side."},
    {"quote", (PyCFunction)(void (*)(void))Core_quote, FASTKW,
     "quote(broker, instrument, ts_broker, ts_recv, seq, levels=DEPTH_LEVELS)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Core_members[] = {
    {"bids", T_OBJECT_EX, offsetof(Core, bids), 0, NULL},
    {"asks", T_OBJECT_EX, offsetof(Core, asks), 0, NULL},
    {"scale", T_OBJECT_EX, offsetof(Core, scale), 0, NULL},
    {"_bid_keys", T_OBJECT_EX, offsetof(Core, bid_keys), 0, NULL},
    {"_bid_lvls", T_OBJECT_EX, offsetof(Core, bid_lvls), 0, NULL},
    {"_bid_texts", T_OBJECT_EX, offsetof(Core, bid_texts), 0, NULL},
    {"_ask_keys", T_OBJECT_EX, offsetof(Core, ask_keys), 0, NULL},
    {"_ask_lvls", T_OBJECT_EX, offsetof(Core, ask_lvls), 0, NULL},
    {"_ask_texts", T_OBJECT_EX, offsetof(Core, ask_texts), 0, NULL},
    {"_bid_depth", T_OBJECT_EX, offsetof(Core, bid_depth), 0, NULL},
    {"_ask_depth", T_OBJECT_EX, offsetof(Core, ask_depth), 0, NULL},
    {"_depth_n", T_OBJECT_EX, offsetof(Core, depth_n), 0, NULL},
    {"_qty_format", T_OBJECT_EX, offsetof(Core, qty_format), 0, NULL},
    {"_qty_scale", T_DOUBLE, offsetof(Core, qty_scale), 0, NULL},
    {"_qty_limit", T_DOUBLE, offsetof(Core, qty_limit), 0, NULL},
    {"inexact", T_BOOL, offsetof(Core, inexact), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "marketdata.feeds._cfeeds.BookCore",
    .tp_doc = PyDoc_STR("Compiled storage and hot path of the sorted books: venue.CompiledSortedBook, kraken.CompiledKrakenBook."),
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

/* configure(Quote, quote_new, depth_levels): how quotes are made. Quote's fields are stored
 * straight into its slots only when quote_new is not Quote itself (venue._quote_maker found the
 * layout it expects) and each of the 11 names is an object slot of Quote; else quote_new is called. */
static PyObject *configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyType_Check(args[0]) || !PyCallable_Check(args[1]) || !PyLong_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "configure(Quote, quote_new, depth_levels)");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    int direct = args[1] != args[0] && type->tp_alloc != NULL;
    Py_ssize_t offsets[QUOTE_FIELDS];
    for (int k = 0; k < QUOTE_FIELDS && direct; k++) {
        PyObject *d = PyObject_GetAttrString(args[0], quote_names[k]);
        if (d == NULL) {
            PyErr_Clear();
            direct = 0;
            break;
        }
        if (Py_TYPE(d) == &PyMemberDescr_Type && ((PyMemberDescrObject *)d)->d_common.d_type == type &&
            ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX &&
            !(((PyMemberDescrObject *)d)->d_member->flags & READONLY))
            offsets[k] = ((PyMemberDescrObject *)d)->d_member->offset;
        else
            direct = 0;
        Py_DECREF(d);
    }
    Py_INCREF(args[0]);
    Py_INCREF(args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(quote_type, type);
    Py_XSETREF(quote_new, args[1]);
    Py_XSETREF(default_levels, args[2]);
    if (direct) memcpy(quote_offsets, offsets, sizeof offsets);
    quote_direct = direct;
    return PyBool_FromLong(direct);
}

/* ---- RFC 3339 timestamps (venue.iso_to_us) ---- */

static PyObject *iso_fallback = NULL; /* venue.iso_to_us_py: everything but the usual shape */

static inline int digits(const Py_UCS1 *p, int n, long long *out) {
    long long v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* The usual shape, YYYY-MM-DDThh:mm:ss.ffffff..., every place an ASCII digit, a month 1 to 12 and a
 * year 1 to 9999 (the Python reader's datetime.date refuses the others), is read here as the Python
 * reader reads it: calendar.timegm's day count (days and times past their range add up), the first
 * six places as µs (the Python reader reads those six whatever follows them: "Z", more places, or
 * anything else). Anything else, to the Python reader.
 * The text is read as bytes whatever its kind: a str of 2 or 4 bytes a character has a zero byte
 * among its first two, which is no character of the shape, so it goes to the Python reader. */
static PyObject *iso_to_us(PyObject *module, PyObject *ts) {
    if (PyUnicode_CheckExact(ts) && PyUnicode_READY(ts) == 0 && PyUnicode_GET_LENGTH(ts) >= 26) {
        const Py_UCS1 *p = (const Py_UCS1 *)PyUnicode_DATA(ts);
        long long y, mo, d, h, mi, s, f;
        if (digits(p, 4, &y) && p[4] == '-' && digits(p + 5, 2, &mo) && p[7] == '-' && digits(p + 8, 2, &d) &&
            (p[10] == 'T' || p[10] == 't' || p[10] == ' ') && digits(p + 11, 2, &h) && p[13] == ':' &&
            digits(p + 14, 2, &mi) && p[16] == ':' && digits(p + 17, 2, &s) && p[19] == '.' &&
            digits(p + 20, 6, &f) && y >= 1 && mo >= 1 && mo <= 12) {
            static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
            long long py = y - 1;
            int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            /* date(y, mo, 1).toordinal() - date(1970, 1, 1).toordinal() + d - 1 */
            long long days = py * 365 + py / 4 - py / 100 + py / 400 + before[mo - 1] + (mo > 2 && leap) + 1 - 719163 + d - 1;
            return PyLong_FromLongLong((days * 86400 + h * 3600 + mi * 60 + s) * 1000000 + f);
        }
    }
    if (iso_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "iso_to_us: set_iso_fallback() not called");
        return NULL;
    }
    return PyObject_CallOneArg(iso_fallback, ts);
}

static PyObject *set_iso_fallback(PyObject *module, PyObject *fallback) {
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "set_iso_fallback(callable)");
        return NULL;
    }
    Py_INCREF(fallback);
    Py_XSETREF(iso_fallback, fallback);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(Quote, quote_new, depth_levels) -> whether quotes are made by storing their slots."},
    {"iso_to_us", (PyCFunction)iso_to_us, METH_O, "RFC 3339 UTC timestamp -> µs since the epoch (venue.iso_to_us)."},
    {"set_iso_fallback", (PyCFunction)set_iso_fallback, METH_O, "The reader of every other timestamp."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cfeeds_module = {
    PyModuleDef_HEAD_INIT, .m_name = "marketdata.feeds._cfeeds",
    .m_doc = "Compiled hot paths of the venue feeds: sorted books (Kraken, Coinbase, Binance) and timestamps.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__cfeeds(void) {
    crc_init();
    s_py_set_bid = PyUnicode_InternFromString("_py_set_bid");
    s_py_set_ask = PyUnicode_InternFromString("_py_set_ask");
    s_py_checksum = PyUnicode_InternFromString("_py_checksum");
    s_py_quote = PyUnicode_InternFromString("_py_quote");
    if (!s_py_set_bid || !s_py_set_ask || !s_py_checksum || !s_py_quote) return NULL;
    if (PyType_Ready(&CoreType) < 0) return NULL;
    PyObject *m = PyModule_Create(&cfeeds_module);
    if (m == NULL) return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "BookCore", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
