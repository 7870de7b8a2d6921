/*
 * Region-of-interest JPEG decoding for datumio's workers: decode only the rows and columns
 * a crop needs (libjpeg-turbo's jpeg_skip_scanlines and jpeg_crop_scanline), at a DCT scale.
 *
 * No libjpeg is linked in: load(path) opens a libjpeg-turbo shared library (Pillow's, or
 * the system's) and takes the few entry points used here. The struct layout is libjpeg's
 * API version 62 (the headers in libjpeg/), which jpeg_CreateDecompress checks at run
 * time: a library of another layout refuses, and datumio decodes the whole image instead.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "jpeglib.h"
#include "native.h"

typedef struct jpeg_error_mgr *(*std_error_fn)(struct jpeg_error_mgr *);
typedef void (*create_fn)(j_decompress_ptr, int, size_t);
typedef void (*mem_src_fn)(j_decompress_ptr, const unsigned char *, unsigned long);
typedef int (*read_header_fn)(j_decompress_ptr, boolean);
typedef boolean (*start_fn)(j_decompress_ptr);
typedef void (*crop_fn)(j_decompress_ptr, JDIMENSION *, JDIMENSION *);
typedef JDIMENSION (*skip_fn)(j_decompress_ptr, JDIMENSION);
typedef JDIMENSION (*read_fn)(j_decompress_ptr, JSAMPARRAY, JDIMENSION);
typedef void (*abort_fn)(j_decompress_ptr);

static struct {
    void *handle;
    std_error_fn std_error;
    create_fn create;
    mem_src_fn mem_src;
    read_header_fn read_header;
    start_fn start;
    crop_fn crop;
    skip_fn skip;
    read_fn read;
    abort_fn abort_;
} lib;

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} error_mgr;

static void on_error(j_common_ptr cinfo) {
    error_mgr *err = (error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    (void)cinfo; /* warnings (corrupt data the decoder recovers from) pass, as in OpenCV */
    (void)level;
}

static PyObject *load(PyObject *self, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    if (lib.handle != NULL) Py_RETURN_TRUE;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) Py_RETURN_FALSE;
#define TAKE(field, type, name)                            \
    lib.field = (type)dlsym(h, name);                      \
    if (lib.field == NULL) {                               \
        dlclose(h);                                        \
        Py_RETURN_FALSE;                                   \
    }
    TAKE(std_error, std_error_fn, "jpeg_std_error")
    TAKE(create, create_fn, "jpeg_CreateDecompress")
    TAKE(mem_src, mem_src_fn, "jpeg_mem_src")
    TAKE(read_header, read_header_fn, "jpeg_read_header")
    TAKE(start, start_fn, "jpeg_start_decompress")
    TAKE(crop, crop_fn, "jpeg_crop_scanline")
    TAKE(skip, skip_fn, "jpeg_skip_scanlines")
    TAKE(read, read_fn, "jpeg_read_scanlines")
    TAKE(abort_, abort_fn, "jpeg_abort_decompress")
#undef TAKE
    lib.handle = h;
    Py_RETURN_TRUE;
}

/*
 * decode(data, left, top, right, bottom, denom, gray)
 *     -> (bytearray, x0, y0, width, height, image width, image height)
 *
 * The box is in pixels of the image decoded at 1/denom (right is clipped to the image);
 * the result covers it (columns widened to the iMCU grid: x0 <= left, x0 + width >= right;
 * rows exactly top..bottom),
 * HxWxC uint8 (C = 1 for gray, else 3: RGB) row-major.
 */
static PyObject *decode(PyObject *self, PyObject *args) {
    Py_buffer data;
    unsigned int left, top, right, bottom, denom;
    int gray;
    if (!PyArg_ParseTuple(args, "y*IIIIIp", &data, &left, &top, &right, &bottom, &denom, &gray))
        return NULL;
    if (lib.handle == NULL) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_RuntimeError, "no libjpeg loaded: call load(path) first");
        return NULL;
    }
    /* One decompressor per thread, kept between calls: creating and destroying one costs
     * more than a small region's decode. jpeg_abort_decompress readies it for the next. */
    static __thread struct jpeg_decompress_struct cinfo;
    static __thread error_mgr err;
    static __thread int created = 0;
    PyObject *volatile out = NULL;
    JSAMPROW row = NULL;
    err.message[0] = '\0';
    volatile int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    if (setjmp(err.jump)) {
        failed = 1;
    } else {
        if (!created) {
            cinfo.err = lib.std_error(&err.pub);
            err.pub.error_exit = on_error;
            err.pub.emit_message = on_message;
            lib.create(&cinfo, JPEG_LIB_VERSION, sizeof(struct jpeg_decompress_struct));
            created = 1;
        }
        lib.mem_src(&cinfo, (const unsigned char *)data.buf, (unsigned long)data.len);
        lib.read_header(&cinfo, TRUE);
        cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
        cinfo.scale_num = 1;
        cinfo.scale_denom = denom;
        lib.start(&cinfo);
    }
    Py_END_ALLOW_THREADS
    if (!failed && right > cinfo.output_width) right = cinfo.output_width;
    if (failed || bottom > cinfo.output_height || left >= right || top >= bottom) {
        if (!failed) strcpy(err.message, "the box is outside the decoded image");
        goto done;
    }
    JDIMENSION x0 = left, width = right - left;
    JDIMENSION image_width = cinfo.output_width; /* jpeg_crop_scanline narrows it */
    unsigned int channels = gray ? 1 : 3;
    Py_ssize_t stride = 0;
    char *buffer = NULL;
    if (setjmp(err.jump)) {
        failed = 1;
        goto done;
    }
    lib.crop(&cinfo, &x0, &width);
    stride = (Py_ssize_t)width * channels;
    out = PyByteArray_FromStringAndSize(NULL, stride * (Py_ssize_t)(bottom - top));
    if (out == NULL) goto done;
    buffer = PyByteArray_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    if (setjmp(err.jump)) {
        failed = 1;
    } else {
        if (top > 0) lib.skip(&cinfo, top);
        for (unsigned int y = top; y < bottom; y++) {
            row = (JSAMPROW)(buffer + stride * (Py_ssize_t)(y - top));
            if (lib.read(&cinfo, &row, 1) != 1) {
                strcpy(err.message, "fewer rows than the header says");
                failed = 1;
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS
    if (!failed) {
        PyObject *result = Py_BuildValue("(OIIIIII)", out, (unsigned int)x0, top,
                                         (unsigned int)width, bottom - top,
                                         (unsigned int)image_width,
                                         (unsigned int)cinfo.output_height);
        Py_DECREF(out);
        out = result;
    }
done:
    if (created) lib.abort_(&cinfo);
    PyBuffer_Release(&data);
    if (failed || (out == NULL && !PyErr_Occurred())) {
        Py_XDECREF(out);
        PyErr_Format(PyExc_ValueError, "JPEG region decode failed: %s", err.message);
        return NULL;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"load", load, METH_VARARGS, "load(path) -> bool: take libjpeg-turbo from this library."},
    {"decode", decode, METH_VARARGS,
     "decode(data, left, top, right, bottom, denom, gray) -> (bytearray, x0, y0, w, h, W, H)."},
    {"area", area, METH_VARARGS,
     "area(image, left, top, right, bottom, out, flip) -> None: the box area-resampled into out."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "datumio._jpegroi",
                                    "Region-of-interest JPEG decoding.", -1, methods};

PyMODINIT_FUNC PyInit__jpegroi(void) { return PyModule_Create(&module); }
