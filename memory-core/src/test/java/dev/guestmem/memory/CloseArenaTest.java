package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * {@link AbstractRamBlock#closeArena}: a downcall that was passed a segment holds its arena open for the call (what a
 * native {@link BulkCopier} does to a block's memory), and a free meanwhile waits for it instead of failing. The
 * downcall here is the C library's {@code qsort} of two ints in the arena, whose comparator (an upcall) runs the
 * checks while the call still holds the arena, so nothing depends on timing.
 */
class CloseArenaTest {
    private static Arena held;
    private static final AtomicReference<Throwable> FAILURE = new AtomicReference<>();
    private static Thread closer;
    private static boolean checked;

    @Test
    void aFreeWaitsForTheDowncallThatHoldsTheArenaThenCloses() throws Throwable {
        Linker linker = Linker.nativeLinker();
        MethodHandle qsort = downcall(linker);
        held = Arena.ofShared();
        MemorySegment ints = held.allocate(ValueLayout.JAVA_INT, 2);
        try (Arena upcalls = Arena.ofConfined()) {
            MemorySegment compare = upcallStub(linker, upcalls);
            qsort.invokeExact(ints, 2L, 4L, compare);
        }
        closer.join();
        assertNull(FAILURE.get());
        assertTrue(checked, "the comparator ran inside the call");
        assertFalse(held.scope().isAlive(), "closed once the call let go");
        assertThrows(IllegalStateException.class, () -> AbstractRamBlock.closeArena(held), "a second close");
    }

    /** The comparator: runs inside qsort, which holds the arena of the ints it sorts. Must never throw. */
    static int compare(MemorySegment a, MemorySegment b) {
        try {
            if (!checked) {
                checked = true;
                IllegalStateException e = assertThrows(IllegalStateException.class, held::close,
                        "a plain close fails while the downcall holds the arena");
                assertTrue(e.getMessage().contains("acquired"), e.getMessage());
                closer = Thread.ofPlatform().start(() -> AbstractRamBlock.closeArena(held));
                closer.join(200); // not a timing assertion: it cannot end before this call returns
                assertTrue(closer.isAlive(), "the free waits while the call holds the arena");
                assertTrue(held.scope().isAlive());
            }
        } catch (Throwable t) {
            FAILURE.compareAndSet(null, t);
        }
        return 0;
    }

    @SuppressWarnings("restricted") // the test's own downcall, to hold an arena the way a native copy does
    private static MethodHandle downcall(Linker linker) {
        return linker.downcallHandle(linker.defaultLookup().find("qsort").orElseThrow(), FunctionDescriptor.ofVoid(
                ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
    }

    @SuppressWarnings("restricted") // its comparator, an upcall
    private static MemorySegment upcallStub(Linker linker, Arena arena) throws ReflectiveOperationException {
        MethodHandle target = MethodHandles.lookup().findStatic(CloseArenaTest.class, "compare",
                MethodType.methodType(int.class, MemorySegment.class, MemorySegment.class));
        return linker.upcallStub(target, FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                ValueLayout.ADDRESS), arena);
    }

    @Test
    void aPlainArenaClosesAtOnce() {
        Arena arena = Arena.ofShared();
        arena.allocate(8);
        AbstractRamBlock.closeArena(arena);
        assertEquals(false, arena.scope().isAlive());
    }
}
