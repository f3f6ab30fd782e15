package dev.guestmem.offheap.vhost;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Predicate;

/**
 * Who is at the other end of a vhost-user socket, as the kernel recorded it when the connection was made
 * ({@code SO_PEERCRED}); what a front-end's peer policy decides on before it sends any byte, and so before any
 * guest RAM descriptor leaves this process.
 *
 * @param pid the backend's process id
 * @param uid its effective user id
 * @param gid its effective group id
 */
public record VhostUserPeer(int pid, int uid, int gid) {
    /** A policy: backends run by this process's own user or by root. */
    public static Predicate<VhostUserPeer> sameUser() {
        int self = selfUid();
        return peer -> peer.uid() == self || peer.uid() == 0;
    }

    /** A policy: backends run by exactly {@code uid}. */
    public static Predicate<VhostUserPeer> uid(int uid) {
        return peer -> peer.uid() == uid;
    }

    private static int selfUid() {
        try {
            return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
