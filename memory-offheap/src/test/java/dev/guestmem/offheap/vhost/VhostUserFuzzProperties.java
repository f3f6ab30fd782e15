package dev.guestmem.offheap.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.offheap.ErrnoException;
import dev.guestmem.offheap.internal.linux.Linux;
import dev.guestmem.offheap.internal.linux.Sockets;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.AfterProperty;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * Fuzzing of the two vhost-user parsers a peer feeds: the Java backend's reading of a front-end's requests
 * ({@link VhostUserBackend}) and the front-end's reading of a backend's replies ({@link VhostUserFrontend}), both over
 * real connected Unix sockets with real memfds (some sealed against shrinking, as QEMU shares them, some not) and
 * eventfds attached where a message carries descriptors. Inputs are
 * sessions built from the messages' parts (request codes, reply and version flags, sizes too big, too small or not
 * matching the payload, memory tables with bad counts, overlapping or huge regions and regions past their file's end,
 * vring indices and sizes out of range, descriptor counts that do not match, rings over random guest RAM that are
 * kicked) and byte-level mutations of the corpus in {@code src/test/resources/fuzz/vhost} ({@link VhostUserCorpus}).
 *
 * <p>Forbidden outcomes, per try: an exception but {@link VhostUserException} from the front-end, or any escaping a
 * backend or ring thread; a try that does not end within 30 s; a backend that does not serve the next front-end; on
 * the front-end side, a descriptor open after the try that was not before. The backend keeps a connection's ring
 * descriptors and mappings until it is closed, so it is closed and replaced every {@value #TRIES_PER_BACKEND} tries
 * and after each property; then no descriptor it had may be open and no thread of it alive.
 *
 * <p>The default run tries 300 inputs per property; a long run: {@code ./guestmem test -pl memory-offheap -am
 * -Dtest='VhostUserFuzzProperties' -Dsurefire.failIfNoSpecifiedTests=false -Djqwik.tries.default=200000}. A failing
 * input is printed; keep it as a regression case with the fix.
 */
class VhostUserFuzzProperties {
    private static final int TRIES_PER_BACKEND = 50;
    private static final Duration TRY_TIMEOUT = Duration.ofSeconds(30);
    /** Region and log sizes in bytes: the memfd's own (1 MiB), past its end, tiny, zero, negative, huge. */
    private static final long[] SIZES = {VhostUserCorpus.MIB, 2 * VhostUserCorpus.MIB, 4096, 1, 0, -1, 1L << 40,
            Long.MAX_VALUE, 1L << 62};
    private static final long[] OFFSETS = {0, 4096, VhostUserCorpus.MIB, VhostUserCorpus.MIB - 16, -1, 1L << 62};
    private static final long[] GUESTS = {0, VhostUserCorpus.MIB, VhostUserCorpus.MIB / 2, -VhostUserCorpus.MIB, -1,
            0x1000};
    /** Ring addresses: inside the first region, at its file's end, past it, and outside every region. */
    private static final long[] RING_OFFSETS = {0, 0x1000, 0x2000, VhostUserCorpus.MIB - 16, VhostUserCorpus.MIB,
            VhostUserCorpus.MIB + 0x1000, -VhostUserCorpus.USER, 7};
    private static final int[] NUMS = {1, 2, 8, 256, 32768, 0, 7, 65536, -1};
    private static final int[] INDICES = {0, 0, 0, 1, 7, 8, 255, 256, -1};

    private static final ConcurrentLinkedQueue<String> escaped = new ConcurrentLinkedQueue<>();
    private static Thread.UncaughtExceptionHandler previousHandler;
    private static Path dir;
    private static Backend backend;
    private static int tryNumber;

    /** A backend under fuzzing and what was open before it started. */
    private record Backend(VhostUserBackend backend, Path socket, List<String> fdsBefore, int tries) {
    }

    @BeforeContainer
    static void catchEscapes() throws IOException {
        previousHandler = Thread.getDefaultUncaughtExceptionHandler();
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> escaped.add(t.getName() + ": " + e));
        dir = Files.createTempDirectory("vhost-fuzz",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }

    @AfterContainer
    static void restore() throws IOException {
        Thread.setDefaultUncaughtExceptionHandler(previousHandler);
        Files.deleteIfExists(dir);
    }

    /** Closes the last backend; nothing of it may be left. */
    @AfterProperty
    void closeBackend() throws IOException {
        retire();
    }

    // ---------------------------------------------------------------- the backend reading requests

    @Property
    void builtSessionsAreServedOrCloseTheConnection(@ForAll("sessions") List<byte[]> session,
                                                    @ForAll("fdChanges") List<Integer> fdChanges,
                                                    @ForAll("rams") byte[] ram) {
        feedBackend(session, fdChanges, ram);
    }

    @Property
    void mutatedCorpusRequestsAreServedOrCloseTheConnection(@ForAll("mutatedRequests") List<byte[]> session,
                                                            @ForAll("fdChanges") List<Integer> fdChanges,
                                                            @ForAll("rams") byte[] ram) {
        feedBackend(session, fdChanges, ram);
    }

    /** Every request of the corpus as it is, alone, then all of them in order. */
    @Example
    void theCorpusRequestsThemselves() {
        List<byte[]> all = new ArrayList<>();
        for (Map.Entry<String, byte[]> e : VhostUserCorpus.encode().entrySet()) {
            if (e.getKey().startsWith("request-")) {
                all.add(VhostUserCorpus.stored(e.getKey()));
                feedBackend(List.of(VhostUserCorpus.stored(e.getKey())), List.of(), new byte[0]);
            }
        }
        feedBackend(all, List.of(), new byte[0]);
    }

    /** The stored corpus is what the encoder writes now; {@code -Dguestmem.fuzz.vhost.write=true} writes it. */
    @Example
    void theCorpusIsWhatTheEncoderWrites() throws IOException {
        Path to = Path.of("src/test/resources/fuzz/vhost");
        if (Boolean.getBoolean("guestmem.fuzz.vhost.write")) {
            Files.createDirectories(to);
            for (Map.Entry<String, byte[]> e : VhostUserCorpus.encode().entrySet()) {
                Files.write(to.resolve(e.getKey()), e.getValue());
            }
        }
        for (Map.Entry<String, byte[]> e : VhostUserCorpus.encode().entrySet()) {
            assertArrayEquals(e.getValue(), VhostUserCorpus.stored(e.getKey()), e.getKey());
        }
    }

    /**
     * Sends {@code session} on one connection, each frame with the descriptors its request takes plus
     * {@code fdChanges}' change (taken in turn), guest RAM's first bytes from {@code ram}; signals every eventfd sent
     * and lets the rings run briefly; then checks that the backend serves the next front-end.
     */
    private static void feedBackend(List<byte[]> session, List<Integer> fdChanges, byte[] ram) {
        assertTimeoutPreemptively(TRY_TIMEOUT, () -> {
            Backend b = backend();
            String errorBefore = b.backend().lastError();
            List<Integer> eventfds = new ArrayList<>();
            int fd = Sockets.unixStreamSocket();
            try (VhostUserChannel channel = new VhostUserChannel(fd)) {
                Sockets.connect(fd, b.socket().toString());
                int i = 0;
                int sent = 0;
                for (byte[] frame : session) {
                    int change = fdChanges.isEmpty() ? 0 : fdChanges.get(i++ % fdChanges.size());
                    if (!sendFrame(fd, frame, change, sent++, ram, eventfds)) {
                        break;   // the backend closed the connection: the rest has no reader
                    }
                }
                if (!eventfds.isEmpty()) {
                    for (int e : eventfds) {
                        Sockets.eventfdWrite(e, 1);
                    }
                    drain(channel, System.nanoTime() + 200_000_000L);   // the kicked rings run meanwhile
                }
            } finally {
                for (int e : eventfds) {
                    Linux.close(e);
                }
            }
            assertServed(b);
            assertEquals(List.of(), List.copyOf(escaped), "nothing escaped a backend or ring thread");
            String error = b.backend().lastError();
            // The server thread turns an unchecked exception into a reason too: a parser's slip, not a refusal.
            assertFalse(error != null && !error.equals(errorBefore) && error.contains("java."),
                    "a request refused by an exception, not a check: " + error);
        });
    }

    /**
     * Sends one frame, the {@code index}th of its session, with its descriptors; false when the backend has closed the
     * connection.
     */
    private static boolean sendFrame(int fd, byte[] frame, int change, int index, byte[] ram,
                                     List<Integer> eventfds) {
        int[] kinds = VhostUserCorpus.fds(frame);
        int memfds = Math.clamp(kinds[0] + (kinds[1] == 0 ? change : 0), 0, 8);
        int events = Math.clamp(kinds[1] + (kinds[1] != 0 || kinds[0] == 0 ? change : 0), 0, 8 - memfds);
        int[] fds = new int[memfds + events];
        try {
            for (int k = 0; k < memfds; k++) {
                // Sealed or not by the frame's place in the session and the fd's in the frame, so that every message
                // gets both kinds over the inputs: RAM that may fault (guarded) and RAM that cannot (a dirty log must
                // be sealed to be accepted).
                fds[k] = memfd(ram, (index + k) % 2 == 0);
            }
            for (int k = memfds; k < fds.length; k++) {
                fds[k] = Sockets.eventfd(0, Sockets.EFD_CLOEXEC | Sockets.EFD_NONBLOCK);
                eventfds.add(fds[k]);
            }
            int sent = 0;
            int[] attach = fds;
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (sent < frame.length) {
                long n = Sockets.sendmsg(fd, frame, sent, frame.length - sent, attach);
                if (n < 0) {
                    assertTrue(System.nanoTime() < deadline, "the backend reads what it is sent");
                    Sockets.poll(fd, Sockets.POLLOUT, 100);
                    continue;
                }
                sent += (int) n;
                attach = new int[0];
            }
            return true;
        } catch (ErrnoException e) {
            return false;
        } finally {
            for (int k = 0; k < memfds; k++) {
                Linux.close(fds[k]);   // the backend maps what it keeps
            }
        }
    }

    /**
     * A 1 MiB memfd whose first bytes are {@code ram}: what rings in it read as their descriptors and indices;
     * {@code sealed}: sealed against shrinking and growing, as QEMU seals the memfds it shares.
     */
    private static int memfd(byte[] ram, boolean sealed) {
        int fd = Linux.memfdCreate("vhost-fuzz", Linux.MFD_CLOEXEC | Linux.MFD_ALLOW_SEALING);
        try {
            Files.write(Path.of("/proc/self/fd/" + fd), ram);   // opened anew, so before the file gets its size
        } catch (IOException e) {
            Linux.close(fd);
            throw new UncheckedIOException(e);
        }
        Linux.ftruncate(fd, VhostUserCorpus.MIB);
        if (sealed) {
            Linux.fcntl(fd, Linux.F_ADD_SEALS, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW);
        }
        return fd;
    }

    /** Reads and drops whatever the backend answers until {@code deadline} or the end of the connection. */
    private static void drain(VhostUserChannel channel, long deadline) {
        while (System.nanoTime() < deadline) {
            try {
                VhostUserChannel.closeAll(channel.receive(deadline).fds());
            } catch (VhostUserChannel.Failure f) {
                return;
            }
        }
    }

    /** The backend serves a new front-end's GET_FEATURES, so it is done with the last connection and alive. */
    private static void assertServed(Backend b) throws VhostUserChannel.Failure {
        int fd = Sockets.unixStreamSocket();
        try (VhostUserChannel channel = new VhostUserChannel(fd)) {
            Sockets.connect(fd, b.socket().toString());
            long deadline = System.nanoTime() + 20_000_000_000L;
            channel.send(VhostUserRequest.GET_FEATURES.code(), VhostUserChannel.VERSION, new byte[0], new int[0],
                    deadline);
            VhostUserChannel.Message reply = channel.receive(deadline);
            assertEquals(VhostUserRequest.GET_FEATURES.code(), reply.request(), "the next front-end is served");
            assertEquals(8, reply.payload().length);
        }
    }

    /** The backend under fuzzing: a new one every {@link #TRIES_PER_BACKEND} tries. */
    private static Backend backend() throws IOException {
        if (backend != null && backend.tries() >= TRIES_PER_BACKEND) {
            retire();
        }
        if (backend == null) {
            List<String> fds = openFds();
            Path socket = dir.resolve("backend-" + tryNumber + ".sock");
            backend = new Backend(VhostUserBackend.listen(socket, VhostUserPeer.sameUser(),
                    VhostUserJavaBackendTest.ECHO), socket, fds, 0);
        }
        tryNumber++;
        backend = new Backend(backend.backend(), backend.socket(), backend.fdsBefore(), backend.tries() + 1);
        return backend;
    }

    /** Closes the backend: every descriptor it had is closed and every thread it started has ended. */
    private static void retire() throws IOException {
        Backend b = backend;
        if (b == null) {
            return;
        }
        backend = null;
        b.backend().close();
        assertNoneOpened(b.fdsBefore(), openFds(), "descriptors left open by the backend");
        assertFalse(Thread.getAllStackTraces().keySet().stream()
                .anyMatch(t -> t.isAlive() && t.getName().startsWith("vhost-user-backend " + b.socket())),
                "a backend or ring thread outlived close()");
    }

    // ---------------------------------------------------------------- the front-end reading replies

    /** What the front-end asks: the request it sends after SET_PROTOCOL_FEATURES, and its well-formed reply. */
    private enum Call {
        GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, GET_CONFIG, GET_VRING_BASE,
        SET_LOG_BASE, SET_OWNER, SET_VRING_NUM;

        void call(VhostUserFrontend fe, int memfd) {
            switch (this) {
                case GET_FEATURES -> fe.getFeatures();
                case GET_PROTOCOL_FEATURES -> fe.getProtocolFeatures();
                case GET_QUEUE_NUM -> fe.getQueueNum();
                case GET_MAX_MEM_SLOTS -> fe.getMaxMemSlots();
                case GET_CONFIG -> fe.getConfig(0, 8);
                case GET_VRING_BASE -> fe.getVringBase(0);
                case SET_LOG_BASE -> fe.setLogBase(memfd, 4096, 0);
                case SET_OWNER -> fe.setOwner();
                case SET_VRING_NUM -> fe.setVringNum(0, 8);
            }
        }

        byte[] reply() {
            return switch (this) {
                case GET_FEATURES -> VhostUserCorpus.stored("reply-get-features.bin");
                case GET_CONFIG -> VhostUserCorpus.stored("reply-get-config.bin");
                case GET_VRING_BASE -> VhostUserCorpus.stored("reply-get-vring-base.bin");
                default -> VhostUserCorpus.frame(VhostUserRequest.valueOf(name()).code(), VhostUserCorpus.REPLY,
                        VhostUserCorpus.u64(this == GET_QUEUE_NUM ? 1 : 0));
            };
        }
    }

    @Property
    void mutatedRepliesAreTakenOrCloseTheConnection(@ForAll("calls") Call call, @ForAll boolean replyAck,
                                                    @ForAll("replyMutations") Random random,
                                                    @ForAll("fdCounts") int replyFds) {
        byte[] reply = random.nextInt(4) == 0 ? mutateBytes(corpusReply(random), random)
                : random.nextBoolean() ? mutateFields(call.reply(), random) : mutateBytes(call.reply(), random);
        feedFrontend(call, replyAck, reply, replyFds);
    }

    /** Each call with its well-formed reply: taken, and the connection stays. */
    @Example
    void wellFormedRepliesAreTaken() {
        for (Call call : Call.values()) {
            for (boolean ack : new boolean[] {false, true}) {
                assertTrue(feedFrontend(call, ack, call.reply(), 0), call + " ack=" + ack);
            }
        }
    }

    /**
     * Plays a backend that answers the front-end's {@code call} (after its SET_PROTOCOL_FEATURES) with {@code reply}
     * and {@code replyFds} eventfds, then closes; returns whether the call succeeded.
     */
    private static boolean feedFrontend(Call call, boolean replyAck, byte[] reply, int replyFds) {
        return assertTimeoutPreemptively(TRY_TIMEOUT, () -> {
            List<String> fdsBefore = openFds();
            Path socket = dir.resolve("frontend-" + tryNumber++ + ".sock");
            int listener = Sockets.unixStreamSocket();
            boolean ok;
            try {
                Sockets.bind(listener, socket.toString());
                Sockets.listen(listener, 1);
                CompletableFuture<Void> peer = CompletableFuture.runAsync(() -> playBackend(listener, reply, replyFds));
                int memfd = Linux.memfdCreate("vhost-fuzz-log", Linux.MFD_CLOEXEC);
                try (VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(10),
                        VhostUserPeer.sameUser())) {
                    Linux.ftruncate(memfd, 4096);
                    fe.setProtocolFeatures(VhostUserCorpus.ALL_PROTOCOL
                            & (replyAck ? -1 : ~VhostUserFrontend.PROTOCOL_F_REPLY_ACK));
                    try {
                        call.call(fe, memfd);
                        ok = true;
                    } catch (VhostUserException e) {
                        assertFalse(e.getMessage().isBlank() || e.getMessage().contains("\n"), e.getMessage());
                        ok = false;
                    }
                } finally {
                    Linux.close(memfd);
                }
                peer.get(20, TimeUnit.SECONDS);
            } finally {
                Linux.close(listener);
                Files.deleteIfExists(socket);
            }
            assertNoneOpened(fdsBefore, openFds(), "no descriptor leaks");
            return ok;
        });
    }

    /** Accepts the front-end, reads its two requests, sends {@code reply} as it is, and closes. */
    private static void playBackend(int listener, byte[] reply, int replyFds) {
        Sockets.poll(listener, Sockets.POLLIN, 20_000);
        int fd = Sockets.accept(listener);
        int[] fds = new int[replyFds];
        try (VhostUserChannel channel = new VhostUserChannel(fd)) {
            long deadline = System.nanoTime() + 20_000_000_000L;
            for (int i = 0; i < 2; i++) {
                VhostUserChannel.closeAll(channel.receive(deadline).fds());
            }
            for (int i = 0; i < fds.length; i++) {
                fds[i] = Sockets.eventfd(0, Sockets.EFD_CLOEXEC);
            }
            Sockets.sendmsg(fd, reply, 0, reply.length, fds);   // a few hundred bytes: the socket takes them at once
        } catch (VhostUserChannel.Failure | ErrnoException e) {
            // the front-end gave up first: nothing to answer
        } finally {
            for (int f : fds) {
                if (f > 0) {
                    Linux.close(f);
                }
            }
        }
    }

    private static byte[] corpusReply(Random random) {
        List<String> names = VhostUserCorpus.encode().keySet().stream().filter(n -> n.startsWith("reply-")).toList();
        return VhostUserCorpus.stored(names.get(random.nextInt(names.size())));
    }

    // ---------------------------------------------------------------- inputs

    @Provide
    Arbitrary<List<byte[]>> sessions() {
        return Arbitraries.randomValue(random -> {
            List<byte[]> session = new ArrayList<>();
            if (random.nextInt(3) == 0) {
                // A ring set up in order, each step open to mutation: rings over the RAM the fuzzer wrote, kicked.
                session.add(VhostUserCorpus.frame(VhostUserRequest.SET_PROTOCOL_FEATURES.code(),
                        VhostUserChannel.VERSION, VhostUserCorpus.u64(VhostUserCorpus.ALL_PROTOCOL)));
                session.add(memTable(random));
                session.add(VhostUserCorpus.frame(VhostUserRequest.SET_VRING_NUM.code(), flags(random),
                        VhostUserCorpus.pair(pick(INDICES, random), pick(NUMS, random))));
                session.add(vringAddr(random));
                session.add(VhostUserCorpus.frame(VhostUserRequest.SET_VRING_KICK.code(), flags(random),
                        VhostUserCorpus.u64(0)));
                session.add(VhostUserCorpus.frame(VhostUserRequest.SET_VRING_ENABLE.code(), flags(random),
                        VhostUserCorpus.pair(0, 1)));
                if (random.nextBoolean()) {
                    session.set(random.nextInt(session.size()), message(random));
                }
            }
            int more = random.nextInt(6);
            for (int i = 0; i < more; i++) {
                session.add(message(random));
            }
            if (random.nextInt(4) == 0 && !session.isEmpty()) {
                int at = random.nextInt(session.size());
                session.set(at, mutateFields(session.get(at), random));
            }
            return session;
        });
    }

    @Provide
    Arbitrary<List<byte[]>> mutatedRequests() {
        List<byte[]> seeds = VhostUserCorpus.encode().keySet().stream().filter(n -> n.startsWith("request-"))
                .map(VhostUserCorpus::stored).toList();
        return Arbitraries.randomValue(random -> {
            List<byte[]> session = new ArrayList<>();
            int n = 1 + random.nextInt(4);
            for (int i = 0; i < n; i++) {
                byte[] seed = seeds.get(random.nextInt(seeds.size()));
                session.add(random.nextInt(3) == 0 ? seed : mutateBytes(seed, random));
            }
            return session;
        });
    }

    /** Changes to the descriptors a request takes: mostly none, else one fewer or one or two more. */
    @Provide
    Arbitrary<List<Integer>> fdChanges() {
        return Arbitraries.frequency(Tuple.of(8, 0), Tuple.of(1, -1), Tuple.of(1, 1), Tuple.of(1, 2)).list()
                .ofMaxSize(3);
    }

    /** Guest RAM's first bytes: none, small numbers (indices a ring would take), or anything. */
    @Provide
    Arbitrary<byte[]> rams() {
        return Arbitraries.randomValue(random -> {
            byte[] b = new byte[random.nextInt(3) == 0 ? 0 : 0x3000];
            if (random.nextBoolean()) {
                random.nextBytes(b);
            } else {
                for (int i = 0; i < b.length; i += 2) {
                    b[i] = (byte) random.nextInt(random.nextBoolean() ? 10 : 256);
                }
            }
            return b;
        });
    }

    @Provide
    Arbitrary<Call> calls() {
        return Arbitraries.of(Call.class);
    }

    @Provide
    Arbitrary<Random> replyMutations() {
        return Arbitraries.randomValue(r -> new Random(r.nextLong()));
    }

    @Provide
    Arbitrary<Integer> fdCounts() {
        return Arbitraries.frequency(Tuple.of(6, 0), Tuple.of(1, 1), Tuple.of(1, 8));
    }

    /** One request built from its parts, any code of the protocol or none. */
    private static byte[] message(Random random) {
        VhostUserRequest[] all = VhostUserRequest.values();
        int code = random.nextInt(8) == 0 ? pick(new int[] {0, 7, 39, 99, -1, 0x7fffffff}, random)
                : all[random.nextInt(all.length)].code();
        VhostUserRequest r = VhostUserRequest.of(code);
        byte[] payload;
        if (r == null) {
            payload = new byte[random.nextInt(3) * 8];
        } else {
            payload = switch (r) {
                case SET_MEM_TABLE -> memTablePayload(random);
                case ADD_MEM_REG, REM_MEM_REG -> VhostUserCorpus.buffer(40).putLong(0).putLong(pick(GUESTS, random))
                        .putLong(pick(SIZES, random)).putLong(VhostUserCorpus.USER).putLong(pick(OFFSETS, random))
                        .array();
                case SET_VRING_ADDR -> ringAddrPayload(random);
                case SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE, GET_VRING_BASE ->
                        VhostUserCorpus.pair(pick(INDICES, random), pick(NUMS, random));
                case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR ->
                        VhostUserCorpus.u64((pick(INDICES, random) & 0xffL)
                                | (random.nextInt(3) == 0 ? VhostUserCorpus.NOFD : 0));
                case SET_LOG_BASE -> VhostUserCorpus.pair64(pick(SIZES, random), pick(OFFSETS, random));
                case GET_CONFIG, SET_CONFIG -> {
                    int size = pick(new int[] {0, 1, 8, 256, 257, -1}, random);
                    ByteBuffer b = VhostUserCorpus.buffer(12 + Math.clamp(size, 0, 300));
                    yield b.putInt(pick(new int[] {0, 4, 256, -1, -8}, random)).putInt(size).putInt(0).array();
                }
                case SET_FEATURES, SET_PROTOCOL_FEATURES -> VhostUserCorpus.u64(random.nextBoolean()
                        ? VhostUserCorpus.ALL_PROTOCOL | VhostUserFrontend.VHOST_F_LOG_ALL : random.nextLong());
                default -> new byte[0];
            };
        }
        return VhostUserCorpus.frame(code, flags(random), payload);
    }

    private static byte[] memTable(Random random) {
        return VhostUserCorpus.frame(VhostUserRequest.SET_MEM_TABLE.code(), flags(random), memTablePayload(random));
    }

    /** A table of 0 to 9 regions whose count may lie, each region's fields from the edges. */
    private static byte[] memTablePayload(Random random) {
        int n = random.nextInt(4) == 0 ? random.nextInt(10) : 1;
        int count = random.nextInt(8) == 0 ? pick(new int[] {n + 1, n - 1, -1, 0x7fffffff, 9}, random) : n;
        ByteBuffer b = VhostUserCorpus.buffer(8 + 32 * n).putInt(count).putInt(0);
        for (int i = 0; i < n; i++) {
            boolean plain = random.nextBoolean();
            b.putLong(plain ? i * VhostUserCorpus.MIB : pick(GUESTS, random))
                    .putLong(plain ? VhostUserCorpus.MIB : pick(SIZES, random))
                    .putLong(VhostUserCorpus.USER + i * VhostUserCorpus.MIB)
                    .putLong(plain ? 0 : pick(OFFSETS, random));
        }
        return b.array();
    }

    private static byte[] vringAddr(Random random) {
        return VhostUserCorpus.frame(VhostUserRequest.SET_VRING_ADDR.code(), flags(random), ringAddrPayload(random));
    }

    private static byte[] ringAddrPayload(Random random) {
        boolean plain = random.nextBoolean();
        long desc = VhostUserCorpus.USER + (plain ? 0 : pick(RING_OFFSETS, random));
        long avail = VhostUserCorpus.USER + (plain ? 0x1000 : pick(RING_OFFSETS, random));
        long used = VhostUserCorpus.USER + (plain ? 0x2000 : pick(RING_OFFSETS, random));
        return VhostUserCorpus.vringAddr(random.nextInt(6) == 0 ? pick(INDICES, random) : 0, random.nextInt(2),
                desc, used, avail);
    }

    /** Header flags: mostly version 1 with or without NEED_REPLY; sometimes the reply bit or another version. */
    private static int flags(Random random) {
        return switch (random.nextInt(8)) {
            case 0 -> VhostUserCorpus.REPLY;
            case 1 -> pick(new int[] {0, 2, 3, -1, 0x100}, random);
            case 2, 3 -> VhostUserChannel.VERSION | VhostUserChannel.FLAG_NEED_REPLY;
            default -> VhostUserChannel.VERSION;
        };
    }

    /** A frame with one header field changed: the code, the flags, or the size against the payload that follows. */
    private static byte[] mutateFields(byte[] frame, Random random) {
        byte[] f = frame.clone();
        ByteBuffer h = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN);
        int payload = f.length - VhostUserChannel.HEADER_SIZE;
        switch (random.nextInt(3)) {
            case 0 -> h.putInt(0, random.nextBoolean() ? random.nextInt(40) : random.nextInt());
            case 1 -> h.putInt(4, h.getInt(4) ^ (1 << random.nextInt(random.nextBoolean() ? 4 : 32)));
            default -> h.putInt(8, pick(new int[] {payload + 1, payload - 1, 0, 4096, 4097, -1, payload + 8,
                Math.max(0, payload - 8)}, random));
        }
        return f;
    }

    /** {@code seed} after 1 to 4 byte edits: a byte changed, bytes inserted, deleted or repeated, or cut short. */
    private static byte[] mutateBytes(byte[] seed, Random random) {
        List<Byte> b = new ArrayList<>();
        for (byte x : seed) {
            b.add(x);
        }
        int edits = 1 + random.nextInt(4);
        for (int e = 0; e < edits; e++) {
            int at = b.isEmpty() ? 0 : random.nextInt(b.size() + 1);
            switch (random.nextInt(5)) {
                case 0, 1 -> {
                    if (at < b.size()) {
                        b.set(at, (byte) (random.nextBoolean() ? random.nextInt(256) : b.get(at) ^ (1 << random.nextInt(8))));
                    }
                }
                case 2 -> {
                    int n = 1 + random.nextInt(8);
                    for (int k = 0; k < n; k++) {
                        b.add(at, (byte) random.nextInt(256));
                    }
                }
                case 3 -> b.subList(at, Math.min(b.size(), at + 1 + random.nextInt(16))).clear();
                default -> b.subList(at, b.size()).clear();
            }
        }
        byte[] out = new byte[b.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = b.get(i);
        }
        return out;
    }

    private static int pick(int[] values, Random random) {
        return values[random.nextInt(values.length)];
    }

    private static long pick(long[] values, Random random) {
        return values[random.nextInt(values.length)];
    }

    /**
     * What the open descriptors are ({@code /proc/self/fd}'s links, sorted), so a leak names its kind: sockets,
     * memfds, eventfds. A jar the class loader opened meanwhile is the JVM's own and is left out.
     */
    private static List<String> openFds() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.map(fd -> {
                try {
                    return Files.readSymbolicLink(fd).toString();
                } catch (IOException e) {
                    return "";   // the listing's own descriptor, gone already
                }
            }).filter(link -> !link.isEmpty() && !link.endsWith(".jar")).map(VhostUserFuzzProperties::kind).sorted()
                    .toList();
        }
    }

    /**
     * Fails when {@code after} holds a descriptor that {@code before} did not (counting repeats). Descriptors that
     * closed meanwhile are not this try's: other tests' blocks are unmapped and closed by a cleaner at any time.
     */
    private static void assertNoneOpened(List<String> before, List<String> after, String what) {
        List<String> left = new ArrayList<>(before);
        List<String> opened = new ArrayList<>();
        for (String fd : after) {
            if (!left.remove(fd)) {
                opened.add(fd);
            }
        }
        assertEquals(List.of(), opened, what + " (open before: " + before + ")");
    }

    /** A descriptor's kind: {@code socket}, {@code memfd}, {@code anon_inode:[eventfd]} or its file. */
    private static String kind(String link) {
        return link.startsWith("socket:") ? "socket" : link.startsWith("/memfd:") ? "memfd" : link;
    }
}
