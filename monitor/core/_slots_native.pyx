# cython: language_level=3, boundscheck=False, wraparound=False
"""Native construction of frozen, slotted dataclass values (see `monitor/core/slots.py`).

`frozen.maker(cls)` fills each slot through its member descriptor, one Python call per
field; the engine builds tens of hits and matches per article. `Maker` writes the same
references into the same slots directly: the instance is allocated as the class
allocates it and each value is stored where the class's own member descriptor would
store it, so the value is the same object `cls(...)` would build, without `__init__`.
"""

from cpython.object cimport PyObject, PyTypeObject

import types


cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        const char *name
        int type
        Py_ssize_t offset
        int flags
    int T_OBJECT_EX
    int READONLY


cdef extern from "Python.h":
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member


cdef extern from *:
    """
    static PyObject *__pyx_slots_alloc(PyTypeObject *t) { return t->tp_alloc(t, 0); }
    static void __pyx_slots_store(PyObject *o, Py_ssize_t offset, PyObject *v) {
        PyObject **slot = (PyObject **)((char *)o + offset);
        PyObject *old = *slot;
        Py_INCREF(v);
        *slot = v;
        Py_XDECREF(old);
    }
    """
    object __pyx_slots_alloc(PyTypeObject *t)  # a new reference, NULL on error
    void __pyx_slots_store(PyObject *o, Py_ssize_t offset, PyObject *v)


cdef class Maker:
    """`Maker(cls, names, other)(v1, v2, ...)` builds `cls` with the slot of each of
    `names` set to the value in its place (`other(...)` builds it when the number of
    values differs); ValueError when a name is not a plain object slot of `cls` itself."""

    cdef object cls, other
    cdef Py_ssize_t n
    cdef Py_ssize_t offsets[32]

    def __init__(self, cls, names, other):
        names = tuple(names)
        if len(names) > 32:
            raise ValueError("more than 32 fields")
        self.cls = cls
        self.other = other
        self.n = len(names)
        for i, name in enumerate(names):
            descr = cls.__dict__.get(name)
            if type(descr) is not types.MemberDescriptorType:
                raise ValueError(f"{cls.__name__}.{name} is not a slot of the class itself")
            member = (<PyMemberDescrObject *>descr).d_member
            if member.type != T_OBJECT_EX or member.flags & READONLY:
                raise ValueError(f"{cls.__name__}.{name} is not a writable object slot")
            self.offsets[i] = member.offset

    def __call__(self, *values):
        cdef Py_ssize_t i
        if len(values) != self.n:
            return self.other(*values)
        made = __pyx_slots_alloc(<PyTypeObject *>self.cls)
        for i in range(self.n):
            __pyx_slots_store(<PyObject *>made, self.offsets[i], <PyObject *>values[i])
        return made
