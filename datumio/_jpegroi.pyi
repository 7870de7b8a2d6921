"""Types of the compiled region-of-interest JPEG decoder (``datumio/_native/jpegroi.c``)."""

def load(path: str, /) -> bool: ...
def decode(
    data: bytes | memoryview,
    left: int,
    top: int,
    right: int,
    bottom: int,
    denom: int,
    gray: bool,
    /,
) -> tuple[bytearray, int, int, int, int, int, int]: ...
def area(
    image: object,
    left: int,
    top: int,
    right: int,
    bottom: int,
    out: object,
    flip: bool,
    portable: bool = False,
    /,
) -> None: ...
