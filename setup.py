"""The optional compiled part: region-of-interest JPEG decoding (``datumio/_native``).

Everything else is in ``setup.cfg``. The extension needs a C compiler and nothing else (the
libjpeg API headers are in ``datumio/_native/libjpeg``; the library itself is loaded at run
time). Where it cannot be built, the install goes on without it and datumio decodes whole
images, as it always did.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "datumio._jpegroi",
            ["datumio/_native/jpegroi.c", "datumio/_native/area.c"],
            include_dirs=["datumio/_native/libjpeg"],
            libraries=["dl", "m"],
            optional=True,
        )
    ]
)
