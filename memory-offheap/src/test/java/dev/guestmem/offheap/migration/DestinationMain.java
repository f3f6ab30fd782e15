package dev.guestmem.offheap.migration;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;

/**
 * A second JVM that is a migration's destination: the machine of {@link Machine#threeBackends()}, its RAM restored
 * from TCP port {@code args[0]} of 127.0.0.1 and then saved back over the same connection, so that the source can
 * compare it byte for byte. Prints {@code restored rounds=N pages=P} at the end.
 */
public final class DestinationMain {
    private DestinationMain() {
    }

    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(args[0]);
        try (Machine m = Machine.threeBackends();
             SocketChannel ch = SocketChannel.open(new InetSocketAddress(InetAddress.getLoopbackAddress(), port))) {
            m.fill((byte) 0x77);
            RestoreReport r = RamMigration.restore(m.system, ch);
            RamMigration.save(m.system, ch);
            System.out.println("restored rounds=" + r.rounds() + " pages=" + r.pages());
        }
    }
}
