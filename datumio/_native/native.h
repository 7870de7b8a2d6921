/* What the two sources of datumio._jpegroi share. */
#ifndef DATUMIO_NATIVE_H
#define DATUMIO_NATIVE_H
#include <Python.h>

/* area.c: area(image, left, top, right, bottom, out, flip) -> None */
PyObject *area(PyObject *self, PyObject *args);

#endif
