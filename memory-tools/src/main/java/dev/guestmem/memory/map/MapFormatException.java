package dev.guestmem.memory.map;

/** A machine map that cannot be loaded; the message names the region id and the field at fault. */
public final class MapFormatException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public MapFormatException(String message) {
        super(message);
    }

    public MapFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
