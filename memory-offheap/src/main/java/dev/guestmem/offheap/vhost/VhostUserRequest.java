package dev.guestmem.offheap.vhost;

/**
 * The front-end's requests of the vhost-user protocol, with their numbers on the wire, as QEMU's
 * {@code VhostUserRequest} (docs/interop/vhost-user.rst, "Front-end message types"). Only the requests this front-end
 * sends are listed; a reply naming any other number is a protocol error.
 */
public enum VhostUserRequest {
    GET_FEATURES(1),
    SET_FEATURES(2),
    SET_OWNER(3),
    RESET_OWNER(4),
    SET_MEM_TABLE(5),
    SET_LOG_BASE(6),
    SET_VRING_NUM(8),
    SET_VRING_ADDR(9),
    SET_VRING_BASE(10),
    GET_VRING_BASE(11),
    SET_VRING_KICK(12),
    SET_VRING_CALL(13),
    SET_VRING_ERR(14),
    GET_PROTOCOL_FEATURES(15),
    SET_PROTOCOL_FEATURES(16),
    GET_QUEUE_NUM(17),
    SET_VRING_ENABLE(18),
    GET_CONFIG(24),
    SET_CONFIG(25),
    RESET_DEVICE(34),
    GET_MAX_MEM_SLOTS(36),
    ADD_MEM_REG(37),
    REM_MEM_REG(38);

    private static final VhostUserRequest[] BY_CODE = new VhostUserRequest[39];

    static {
        for (VhostUserRequest r : values()) {
            BY_CODE[r.code] = r;
        }
    }

    private final int code;

    VhostUserRequest(int code) {
        this.code = code;
    }

    /** The request's number in the message header. */
    public int code() {
        return code;
    }

    /** The request with that number, or null for one this front-end never sends. */
    static VhostUserRequest of(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }

    /** The name of a request number for messages: the request's name, or {@code code=N}. */
    static String name(int code) {
        VhostUserRequest r = of(code);
        return r != null ? r.name() : "code=" + Integer.toUnsignedString(code);
    }
}
