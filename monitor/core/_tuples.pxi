# Included by the native kernels (`include "_tuples.pxi"`): a value of a tuple subclass
# (a NamedTuple such as Span or a stance record) made as `tuple.__new__(cls, items)`
# makes it, without the call through `tuple.__new__` and its argument parsing, which
# cost several times the allocation itself.

from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM


cdef extern from "Python.h":
    ctypedef struct _AllocType "PyTypeObject":
        PyObject *(*tp_alloc)(_AllocType *, Py_ssize_t)


cdef object _subtuple(object cls, tuple items):
    """`tuple.__new__(cls, items)` for `cls` a subclass of tuple with no __new__ of its own
    in C (as NamedTuple classes are)."""
    cdef Py_ssize_t i, n = len(items)
    cdef PyObject *made = (<_AllocType *>cls).tp_alloc(<_AllocType *>cls, n)
    if made == NULL:
        raise MemoryError()
    out = <object>made  # a second reference: give back the one tp_alloc returned
    Py_DECREF(out)
    for i in range(n):
        item = items[i]
        Py_INCREF(item)  # PyTuple_SET_ITEM takes the reference over
        PyTuple_SET_ITEM(out, i, item)
    return out
