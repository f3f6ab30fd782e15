package dev.guestmem.offheap.migration;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.FutureTask;

/** Real connected sockets for the tests, and a task on a thread of its own (the other end of a migration). */
final class Transport {
    /** Both ends of one connection. */
    record Pair(SocketChannel source, SocketChannel destination) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            try (source; destination) {
                // closes both, whatever the first does
            }
        }
    }

    private Transport() {
    }

    /** A TCP connection over 127.0.0.1. */
    static Pair tcp() throws IOException {
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            SocketChannel source = SocketChannel.open(server.getLocalAddress());
            return new Pair(source, server.accept());
        }
    }

    /** A Unix domain socket connection through {@code dir/migration.sock}. */
    static Pair unix(Path dir) throws IOException {
        UnixDomainSocketAddress address = UnixDomainSocketAddress.of(dir.resolve("migration.sock"));
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(address);
            SocketChannel source = SocketChannel.open(address);
            return new Pair(source, server.accept());
        }
    }

    /**
     * A destination that reads at least {@code bytes} bytes of what {@code channel} receives, then closes it, on a
     * thread of its own; the task gives the bytes it read.
     */
    static FutureTask<Long> readThenClose(SocketChannel channel, long bytes) {
        return start("short reader", () -> {
            ByteBuffer b = ByteBuffer.allocate(64 << 10);
            long n = 0;
            while (n < bytes) {
                int k = channel.read(b.clear());
                if (k < 0) {
                    break;
                }
                n += k;
            }
            channel.close();
            return n;
        });
    }

    /** {@code task} started on a new daemon thread. */
    static <T> FutureTask<T> start(String name, Callable<T> task) {
        FutureTask<T> f = new FutureTask<>(task);
        Thread t = new Thread(f, name);
        t.setDaemon(true);
        t.start();
        return f;
    }
}
