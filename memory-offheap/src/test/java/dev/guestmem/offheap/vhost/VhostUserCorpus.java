package dev.guestmem.offheap.vhost;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The vhost-user fuzz corpus: one whole frame (12-byte header and payload, as {@link VhostUserChannel} puts it on the
 * wire) per file of {@code src/test/resources/fuzz/vhost}, encoded here with the layouts of docs/interop/vhost-user.rst
 * and written by {@code VhostUserFuzzProperties.theCorpusIsWhatTheEncoderWrites} under
 * {@code -Dguestmem.fuzz.vhost.write=true}. The descriptors a frame carries are not in the file: {@link #fds} says
 * which its request takes.
 */
final class VhostUserCorpus {
    static final long MIB = 1 << 20;
    /** The front-end address claimed for the first region; the others follow it a MiB apart. */
    static final long USER = 0x7f00_0000_0000L;
    static final int REPLY = VhostUserChannel.VERSION | VhostUserChannel.FLAG_REPLY;
    static final long ALL_PROTOCOL = VhostUserFrontend.PROTOCOL_F_REPLY_ACK | VhostUserFrontend.PROTOCOL_F_MQ
            | VhostUserFrontend.PROTOCOL_F_LOG_SHMFD | VhostUserFrontend.PROTOCOL_F_CONFIG
            | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS;
    /** SET_VRING_KICK/CALL/ERR: the payload's flag that no descriptor comes. */
    static final long NOFD = 1L << 8;

    private VhostUserCorpus() {
    }

    /** Every corpus frame by file name: the requests a front-end sends, then the replies a backend sends. */
    static Map<String, byte[]> encode() {
        Map<String, byte[]> m = new LinkedHashMap<>();
        int v = VhostUserChannel.VERSION;
        int ack = v | VhostUserChannel.FLAG_NEED_REPLY;
        m.put("request-get-features.bin", frame(VhostUserRequest.GET_FEATURES.code(), v, new byte[0]));
        m.put("request-set-features.bin", frame(VhostUserRequest.SET_FEATURES.code(), v,
                u64(VhostUserFrontend.VIRTIO_F_VERSION_1 | VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES)));
        m.put("request-set-protocol-features.bin", frame(VhostUserRequest.SET_PROTOCOL_FEATURES.code(), v,
                u64(ALL_PROTOCOL)));
        m.put("request-set-owner.bin", frame(VhostUserRequest.SET_OWNER.code(), ack, new byte[0]));
        m.put("request-set-mem-table.bin", frame(VhostUserRequest.SET_MEM_TABLE.code(), ack, table(2)));
        m.put("request-add-mem-reg.bin", frame(VhostUserRequest.ADD_MEM_REG.code(), ack, memReg(2 * MIB)));
        m.put("request-rem-mem-reg.bin", frame(VhostUserRequest.REM_MEM_REG.code(), ack, memReg(2 * MIB)));
        m.put("request-set-log-base.bin", frame(VhostUserRequest.SET_LOG_BASE.code(), v, pair64(4096, 0)));
        m.put("request-set-vring-num.bin", frame(VhostUserRequest.SET_VRING_NUM.code(), ack, pair(0, 8)));
        m.put("request-set-vring-addr.bin", frame(VhostUserRequest.SET_VRING_ADDR.code(), ack,
                vringAddr(0, 0, USER, USER + 0x2000, USER + 0x1000)));
        m.put("request-set-vring-base.bin", frame(VhostUserRequest.SET_VRING_BASE.code(), ack, pair(0, 0)));
        m.put("request-set-vring-kick.bin", frame(VhostUserRequest.SET_VRING_KICK.code(), ack, u64(0)));
        m.put("request-set-vring-call.bin", frame(VhostUserRequest.SET_VRING_CALL.code(), ack, u64(0)));
        m.put("request-set-vring-err.bin", frame(VhostUserRequest.SET_VRING_ERR.code(), ack, u64(NOFD)));
        m.put("request-set-vring-enable.bin", frame(VhostUserRequest.SET_VRING_ENABLE.code(), ack, pair(0, 1)));
        m.put("request-get-vring-base.bin", frame(VhostUserRequest.GET_VRING_BASE.code(), v, pair(0, 0)));
        m.put("request-get-queue-num.bin", frame(VhostUserRequest.GET_QUEUE_NUM.code(), v, new byte[0]));
        m.put("request-get-max-mem-slots.bin", frame(VhostUserRequest.GET_MAX_MEM_SLOTS.code(), v, new byte[0]));
        m.put("request-get-config.bin", frame(VhostUserRequest.GET_CONFIG.code(), v, config(0, 8)));
        m.put("request-set-config.bin", frame(VhostUserRequest.SET_CONFIG.code(), ack, config(0, 8)));
        m.put("reply-get-features.bin", frame(VhostUserRequest.GET_FEATURES.code(), REPLY,
                u64(VhostUserFrontend.VIRTIO_F_VERSION_1 | VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES)));
        m.put("reply-ack.bin", frame(VhostUserRequest.SET_OWNER.code(), REPLY, u64(0)));
        m.put("reply-get-vring-base.bin", frame(VhostUserRequest.GET_VRING_BASE.code(), REPLY, pair(0, 5)));
        m.put("reply-get-config.bin", frame(VhostUserRequest.GET_CONFIG.code(), REPLY, config(0, 8)));
        return m;
    }

    /** The corpus file {@code name} as stored under {@code /fuzz/vhost/}. */
    static byte[] stored(String name) {
        try (InputStream in = VhostUserCorpus.class.getResourceAsStream("/fuzz/vhost/" + name)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource /fuzz/vhost/" + name);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The descriptors a request frame takes, as {memfds, eventfds}: one memfd per SET_MEM_TABLE region (as the
     * frame's count says, up to 8), one for ADD/REM_MEM_REG and SET_LOG_BASE, one eventfd for SET_VRING_KICK/CALL/ERR
     * unless the payload says none.
     */
    static int[] fds(byte[] frame) {
        if (frame.length < VhostUserChannel.HEADER_SIZE) {
            return new int[] {0, 0};
        }
        ByteBuffer b = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN);
        int payload = frame.length - VhostUserChannel.HEADER_SIZE;
        VhostUserRequest r = VhostUserRequest.of(b.getInt(0));
        if (r == null) {
            return new int[] {0, 0};
        }
        return switch (r) {
            case SET_MEM_TABLE -> new int[] {payload >= 4 ? Math.clamp(b.getInt(12), 0, 8) : 0, 0};
            case ADD_MEM_REG, REM_MEM_REG, SET_LOG_BASE -> new int[] {1, 0};
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR ->
                    new int[] {0, payload >= 8 && (b.getLong(12) & NOFD) != 0 ? 0 : 1};
            default -> new int[] {0, 0};
        };
    }

    static byte[] frame(int request, int flags, byte[] payload) {
        return ByteBuffer.allocate(VhostUserChannel.HEADER_SIZE + payload.length).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(request).putInt(flags).putInt(payload.length).put(payload).array();
    }

    /** A SET_MEM_TABLE payload of {@code n} regions of 1 MiB at guest 0, 1 MiB, ..., user {@link #USER} + the same. */
    static byte[] table(int n) {
        ByteBuffer b = buffer(8 + 32 * n).putInt(n).putInt(0);
        for (int i = 0; i < n; i++) {
            b.putLong(i * MIB).putLong(MIB).putLong(USER + i * MIB).putLong(0);
        }
        return b.array();
    }

    /** An ADD/REM_MEM_REG payload: padding, then one 1 MiB region at {@code guest}. */
    static byte[] memReg(long guest) {
        return buffer(40).putLong(0).putLong(guest).putLong(MIB).putLong(USER + guest).putLong(0).array();
    }

    static byte[] vringAddr(int index, int flags, long desc, long used, long avail) {
        return buffer(40).putInt(index).putInt(flags).putLong(desc).putLong(used).putLong(avail).putLong(0).array();
    }

    /** A GET/SET_CONFIG payload: offset, size, flags, then {@code size} bytes. */
    static byte[] config(int offset, int size) {
        return buffer(12 + size).putInt(offset).putInt(size).putInt(0).array();
    }

    static byte[] pair(int a, int b) {
        return buffer(8).putInt(a).putInt(b).array();
    }

    static byte[] pair64(long a, long b) {
        return buffer(16).putLong(a).putLong(b).array();
    }

    static byte[] u64(long v) {
        return buffer(8).putLong(v).array();
    }

    static ByteBuffer buffer(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }
}
