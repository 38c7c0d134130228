/* The fuzzy matcher's shortlist count (safetycheck.matching.Matcher._shortlist), in C.
 *
 * Counting which names share enough trigrams with a query takes a dozen numpy calls on arrays of a few
 * thousand ranks; each call's fixed cost made up most of a fuzzy look-up. This is the same count in one
 * call, with a fixed order for names that tie at the cut (numpy's argpartition left it to the CPU).
 *
 * top_shared(parts, order, base, size, threshold, limit) -> list[int]
 *   parts      the query's grams, each a 1-D int32 buffer of distinct name ranks in [base, base + size)
 *              (a rank twice in one gram would count that gram twice)
 *   order      int32 buffer: the name id at each rank
 *   threshold  grams a name must share to count (>= 1)
 *   limit      how many names at most
 * Returns the ids of the names sharing >= threshold grams; when more than `limit` do, the `limit` that
 * share most, ties going to the lower id. Ascending ids.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Py_ssize_t count;
    int32_t id;
} Hit;

static int by_id(const void *a, const void *b) {
    const Hit *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* A 1-D buffer of C ints (int32), or an error. */
static int int32_buffer(PyObject *obj, Py_buffer *view, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_ND | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    if (view->ndim != 1 || view->itemsize != 4 || strcmp(f, "i") != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a 1-D int32 buffer", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *top_shared(PyObject *self, PyObject *args) {
    PyObject *parts, *order_obj, *result = NULL;
    Py_ssize_t base, size, limit;
    int threshold;
    if (!PyArg_ParseTuple(args, "O!Onnin", &PyList_Type, &parts, &order_obj, &base, &size, &threshold, &limit))
        return NULL;
    if (size < 0 || base < 0 || threshold < 1 || limit < 0) {
        PyErr_SetString(PyExc_ValueError, "size, base and limit must be >= 0, threshold >= 1");
        return NULL;
    }
    Py_buffer order;
    if (int32_buffer(order_obj, &order, "order") < 0) return NULL;
    const int32_t *ids = order.buf;
    if (base + size > order.shape[0]) {
        PyErr_SetString(PyExc_ValueError, "base + size is past the end of order");
        PyBuffer_Release(&order);
        return NULL;
    }
    /* A count per rank in range; uint16 saturates, far above any query's number of grams. */
    uint16_t *counts = PyMem_Calloc(size ? size : 1, sizeof(uint16_t));
    Py_ssize_t n_hits = 0, room = 64;
    Py_ssize_t *first = PyMem_Malloc(room * sizeof(Py_ssize_t)); /* ranks, in the order they reach threshold */
    Hit *hits = NULL;
    Py_ssize_t *per_count = NULL;
    int32_t *ties = NULL;
    if (!counts || !first) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t p = 0; p < PyList_GET_SIZE(parts); p++) {
        Py_buffer view;
        if (int32_buffer(PyList_GET_ITEM(parts, p), &view, "each part") < 0) goto done;
        const int32_t *ranks = view.buf;
        for (Py_ssize_t i = 0; i < view.shape[0]; i++) {
            Py_ssize_t at = (Py_ssize_t)ranks[i] - base;
            if (at < 0 || at >= size) {
                PyBuffer_Release(&view);
                PyErr_SetString(PyExc_ValueError, "a rank is outside [base, base + size)");
                goto done;
            }
            if (counts[at] < UINT16_MAX && ++counts[at] == threshold) {
                if (n_hits == room) {
                    Py_ssize_t *grown = PyMem_Realloc(first, 2 * room * sizeof(Py_ssize_t));
                    if (!grown) {
                        PyBuffer_Release(&view);
                        PyErr_NoMemory();
                        goto done;
                    }
                    first = grown;
                    room *= 2;
                }
                first[n_hits++] = at;
            }
        }
        PyBuffer_Release(&view);
    }
    hits = PyMem_Malloc((n_hits ? n_hits : 1) * sizeof(Hit));
    if (!hits) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t kept = 0;
    if (n_hits <= limit) {
        for (Py_ssize_t i = 0; i < n_hits; i++) hits[kept++] = (Hit){counts[first[i]], ids[base + first[i]]};
    } else {
        /* Past the limit: every name sharing more than the cut stays, and of those sharing just the cut
         * the lowest ids. A histogram of the counts (small numbers) finds the cut: no sort of all hits. */
        Py_ssize_t most = 0;
        for (Py_ssize_t i = 0; i < n_hits; i++) most = counts[first[i]] > most ? counts[first[i]] : most;
        per_count = PyMem_Calloc(most + 1, sizeof(Py_ssize_t));
        ties = PyMem_Malloc((limit ? limit : 1) * sizeof(int32_t));
        if (!per_count || !ties) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < n_hits; i++) per_count[counts[first[i]]]++;
        Py_ssize_t cut = most, above = 0; /* above: how many share more than the cut */
        while (above + per_count[cut] < limit) above += per_count[cut--];
        Py_ssize_t room_at_cut = limit - above, n_ties = 0;
        for (Py_ssize_t i = 0; i < n_hits; i++) {
            Py_ssize_t count = counts[first[i]];
            int32_t id = ids[base + first[i]];
            if (count > cut) {
                hits[kept++] = (Hit){count, id};
            } else if (count == cut && room_at_cut > 0 && (n_ties < room_at_cut || id < ties[n_ties - 1])) {
                /* Keep the room_at_cut lowest ids seen so far, ascending (insertion: room_at_cut is small). */
                Py_ssize_t j = n_ties < room_at_cut ? n_ties++ : n_ties - 1;
                for (; j > 0 && ties[j - 1] > id; j--) ties[j] = ties[j - 1];
                ties[j] = id;
            }
        }
        for (Py_ssize_t i = 0; i < n_ties; i++) hits[kept++] = (Hit){cut, ties[i]};
    }
    qsort(hits, kept, sizeof(Hit), by_id);
    result = PyList_New(kept);
    for (Py_ssize_t i = 0; result && i < kept; i++) {
        PyObject *id = PyLong_FromLong(hits[i].id);
        if (!id) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, id);
    }
done:
    PyMem_Free(ties);
    PyMem_Free(per_count);
    PyMem_Free(hits);
    PyMem_Free(first);
    PyMem_Free(counts);
    PyBuffer_Release(&order);
    return result;
}

static PyMethodDef methods[] = {
    {"top_shared", top_shared, METH_VARARGS,
     "Ids of the names sharing >= threshold grams: at most limit, most shared first, ties to the lower id."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_shortlist", "The fuzzy shortlist count.", -1, methods};

PyMODINIT_FUNC PyInit__shortlist(void) { return PyModule_Create(&module); }
