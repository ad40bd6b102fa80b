"""A DLPack tensor (a torch tensor on the CPU) as a buffer, for the bitmask fills."""


def as_buffer(obj):
    device = getattr(obj, "__dlpack_device__", None)
    if device is not None and device()[0] != 1:  # kDLCPU
        raise ValueError("the bitmask must be in CPU memory")
    import numpy

    return numpy.from_dlpack(obj)
