//! rust-vmm vm-memory on guestmem's peer pattern, the counterpart of memory-bench's
//! `dev.guestmem.bench.peers.PeersBenchmark` (the pattern itself is `PeersPattern` there; both must agree).
//!
//! 64 MiB of guest RAM split into `regions` regions of whole 4 KiB pages (the first `16384 % regions` one page
//! larger), from guest-physical 1 GiB up, a one-page hole after each. 1 Mi 8-byte-aligned addresses and 64 Ki page
//! addresses, uniform over the RAM's bytes (so spread over every region), from SplitMix64 with a fixed seed. Every
//! 8-byte word of RAM starts as `mix(its offset in the RAM counted without holes)`.
//!
//! `vm-memory-bench bench [--regions 1,100,1000] [--seed N] [--seconds S]` times each access kind over whole passes
//! (one warm-up pass, then passes until `S` seconds, at least three) and prints one `key=value` line per measure.
//! `vm-memory-bench checksum --regions N [--seed N]` prints the wrapping sum of the 8-byte words read at the 1 Mi
//! addresses, which guestmem's tests compare with their own.

use std::process::exit;
use std::time::Instant;

use vm_memory::bitmap::{AtomicBitmap, Bitmap};
use vm_memory::mmap::NewBitmap;
use vm_memory::{
    Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress,
};

const RAM_BASE: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 64 << 20;
const PAGE: u64 = 4096;
const RAM_PAGES: u64 = RAM_SIZE / PAGE;
const ACCESSES: usize = 1 << 20;
const COPIES: usize = 1 << 16;
const DEFAULT_SEED: u64 = 42;
const VM_MEMORY_VERSION: &str = env!("VM_MEMORY_VERSION");

/// Where the regions lie: `pages / regions` pages each, the first `pages % regions` one more.
struct Layout {
    regions: u64,
    small: u64,
    large_count: u64,
}

impl Layout {
    fn new(regions: u64) -> Result<Layout, String> {
        if regions == 0 || regions > RAM_PAGES {
            return Err(format!("regions={}: expected 1 to {}", regions, RAM_PAGES));
        }
        Ok(Layout { regions, small: RAM_PAGES / regions, large_count: RAM_PAGES % regions })
    }

    fn first_page(&self, r: u64) -> u64 {
        r * self.small + r.min(self.large_count)
    }

    fn pages(&self, r: u64) -> u64 {
        self.small + u64::from(r < self.large_count)
    }

    fn region_of_page(&self, page: u64) -> u64 {
        let large_pages = self.large_count * (self.small + 1);
        if page < large_pages {
            page / (self.small + 1)
        } else {
            self.large_count + (page - large_pages) / self.small
        }
    }

    /// Guest-physical address of byte `offset` of the RAM counted without holes.
    fn guest(&self, offset: u64) -> u64 {
        RAM_BASE + offset + self.region_of_page(offset / PAGE) * PAGE
    }

    fn ranges(&self) -> Vec<(GuestAddress, usize)> {
        (0..self.regions)
            .map(|r| {
                let base = RAM_BASE + (self.first_page(r) + r) * PAGE;
                (GuestAddress(base), (self.pages(r) * PAGE) as usize)
            })
            .collect()
    }
}

/// SplitMix64 (Steele, Lea and Flood): the generator both sides implement.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `[0, bound)`: the high half of the 128-bit product.
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

/// SplitMix64's finalizer; also the initial value of the RAM word at an offset counted without holes.
fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn word_addresses(layout: &Layout, seed: u64) -> Vec<u64> {
    let mut random = SplitMix64(seed);
    (0..ACCESSES).map(|_| layout.guest(random.below(RAM_SIZE / 8) * 8)).collect()
}

fn page_addresses(layout: &Layout, seed: u64) -> Vec<u64> {
    let mut random = SplitMix64(seed);
    (0..COPIES).map(|_| layout.guest(random.below(RAM_PAGES) * PAGE)).collect()
}

fn memory<B: NewBitmap + Bitmap + 'static>(layout: &Layout) -> GuestMemoryMmap<B> {
    let memory = GuestMemoryMmap::<B>::from_ranges(&layout.ranges())
        .unwrap_or_else(|e| fail(&format!("from_ranges: {}", e)));
    // Regions iterate in address order, which is region order.
    for (r, region) in memory.iter().enumerate() {
        let first = layout.first_page(r as u64) * PAGE;
        for off in (0..region.len()).step_by(8) {
            region
                .write_obj(mix(first + off), MemoryRegionAddress(off))
                .unwrap_or_else(|e| fail(&format!("fill offset=0x{:x}: {}", first + off, e)));
        }
    }
    memory
}

fn checksum<B: Bitmap + 'static>(memory: &GuestMemoryMmap<B>, addresses: &[u64]) -> u64 {
    let mut sum = 0u64;
    for &a in addresses {
        sum = sum.wrapping_add(read_u64(memory, a));
    }
    sum
}

fn read_u64<B: Bitmap + 'static>(memory: &GuestMemoryMmap<B>, addr: u64) -> u64 {
    memory
        .read_obj::<u64>(GuestAddress(addr))
        .unwrap_or_else(|e| fail(&format!("read_obj addr=0x{:x}: {}", addr, e)))
}

fn write_u64<B: Bitmap + 'static>(memory: &GuestMemoryMmap<B>, addr: u64, value: u64) {
    memory
        .write_obj(value, GuestAddress(addr))
        .unwrap_or_else(|e| fail(&format!("write_obj addr=0x{:x}: {}", addr, e)))
}

/// Writes `round + i` at the `i`-th of `addresses`; returns `round`.
fn write_words<B: Bitmap + 'static>(memory: &GuestMemoryMmap<B>, addresses: &[u64], round: u64) -> u64 {
    for (i, &a) in addresses.iter().enumerate() {
        write_u64(memory, a, round + i as u64);
    }
    round
}

/// Times `pass` (one walk over `accesses` addresses, returning something derived from what it read) after one
/// warm-up pass, over whole passes until `seconds` have gone and at least three ran. Prints the measure.
fn measure(regions: u64, op: &str, accesses: usize, seconds: f64, mut pass: impl FnMut() -> u64) {
    let mut sink = pass();
    let mut passes = 0u64;
    let start = Instant::now();
    while passes < 3 || start.elapsed().as_secs_f64() < seconds {
        sink = sink.wrapping_add(pass());
        passes += 1;
    }
    let ns = start.elapsed().as_nanos() as f64 / (passes as f64 * accesses as f64);
    // sink is printed so that no pass can be optimized away (Rust 1.63 has no stable black_box).
    println!(
        "peer=vm-memory version={} regions={} op={} ns={:.3} passes={} accesses={} sink=0x{:x}",
        VM_MEMORY_VERSION, regions, op, ns, passes, accesses, sink
    );
}

fn bench(regions: u64, seed: u64, seconds: f64) {
    let layout = Layout::new(regions).unwrap_or_else(|e| fail(&e));
    let words = word_addresses(&layout, seed);
    let pages = page_addresses(&layout, seed);
    let mut buffer = vec![0u8; PAGE as usize];
    {
        let plain = memory::<()>(&layout);
        measure(regions, "read8", ACCESSES, seconds, || checksum(&plain, &words));
        let mut round = 0u64;
        measure(regions, "write8", ACCESSES, seconds, || {
            round += 1;
            write_words(&plain, &words, round)
        });
        measure(regions, "read4k", COPIES, seconds, || {
            let mut sum = 0u64;
            for &a in &pages {
                plain
                    .read_slice(&mut buffer, GuestAddress(a))
                    .unwrap_or_else(|e| fail(&format!("read_slice addr=0x{:x}: {}", a, e)));
                sum = sum.wrapping_add(u64::from(buffer[8]));
            }
            sum
        });
        measure(regions, "write4k", COPIES, seconds, || {
            for &a in &pages {
                plain
                    .write_slice(&buffer, GuestAddress(a))
                    .unwrap_or_else(|e| fail(&format!("write_slice addr=0x{:x}: {}", a, e)));
            }
            buffer.len() as u64
        });
    }
    let logged = memory::<AtomicBitmap>(&layout);
    let mut round = 0u64;
    measure(regions, "write8-dirty", ACCESSES, seconds, || {
        round += 1;
        write_words(&logged, &words, round)
    });
    // Every page written must be marked in its region's bitmap, or the column measured no dirty tracking.
    for &a in &words {
        let region = logged.find_region(GuestAddress(a)).expect("mapped address");
        let offset = (a - region.start_addr().0) as usize;
        if !region.bitmap().dirty_at(offset) {
            fail(&format!("addr=0x{:x}: written but not dirty", a));
        }
    }
}

fn fail(message: &str) -> ! {
    eprintln!("vm-memory-bench: {}", message);
    exit(2)
}

fn number<T: std::str::FromStr>(key: &str, value: Option<&String>) -> T {
    let value = value.unwrap_or_else(|| fail(&format!("{}: missing value", key)));
    value.parse().unwrap_or_else(|_| fail(&format!("{}={}: not a number", key, value)))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("");
    let mut regions = vec![1u64, 100, 1000];
    let mut seed = DEFAULT_SEED;
    let mut seconds = 1.0f64;
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1);
        match args[i].as_str() {
            "--regions" => {
                let list = value.unwrap_or_else(|| fail("--regions: missing value"));
                regions = list.split(',').map(|r| number("regions", Some(&r.to_string()))).collect();
            }
            "--seed" => seed = number("seed", value),
            "--seconds" => seconds = number("seconds", value),
            other => fail(&format!("argument={}: expected --regions, --seed or --seconds", other)),
        }
        i += 2;
    }
    if !seconds.is_finite() || seconds < 0.0 {
        fail(&format!("seconds={}: expected a non-negative number", seconds));
    }
    match mode {
        "bench" => {
            for &r in &regions {
                bench(r, seed, seconds);
            }
        }
        "checksum" => {
            for &r in &regions {
                let layout = Layout::new(r).unwrap_or_else(|e| fail(&e));
                let plain = memory::<()>(&layout);
                let sum = checksum(&plain, &word_addresses(&layout, seed));
                println!("peer=vm-memory regions={} seed={} checksum=0x{:x}", r, seed, sum);
            }
        }
        _ => fail(&format!("mode={}: expected bench or checksum", mode)),
    }
}
