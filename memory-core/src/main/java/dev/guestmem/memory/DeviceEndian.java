package dev.guestmem.memory;

/** The byte order a device's registers use, as QEMU's {@code enum device_endian}. */
public enum DeviceEndian {
    /** The target's own byte order ({@code DEVICE_NATIVE_ENDIAN}). */
    NATIVE,
    /** {@code DEVICE_BIG_ENDIAN}. */
    BIG,
    /** {@code DEVICE_LITTLE_ENDIAN}. */
    LITTLE
}
