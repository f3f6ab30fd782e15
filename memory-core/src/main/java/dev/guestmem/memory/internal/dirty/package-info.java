/**
 * The dirty bitmaps' layouts behind {@link dev.guestmem.memory.DirtyBitmap}: blocks of 64-bit words on the heap or
 * off it, and their word arithmetic. Not exported.
 */
package dev.guestmem.memory.internal.dirty;
