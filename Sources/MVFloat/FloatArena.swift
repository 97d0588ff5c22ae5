/// A stack allocator for float activations. Allocation is a pointer bump inside fixed chunks
/// that are never moved or freed while the arena lives; `reset` and `release(to:)` rewind.
/// The first inference at a given input size creates the chunks; later ones at the same size
/// make the same sequence of requests and so allocate nothing.
final class FloatArena {
    private var chunks: [(base: UnsafeMutablePointer<Float>, capacity: Int)] = []
    private var chunk = 0
    private var used = 0
    private static let minimumChunk = 1 << 20

    struct Mark {
        let chunk: Int
        let used: Int
    }

    deinit {
        for c in chunks { c.base.deallocate() }
    }

    func reset() {
        chunk = 0
        used = 0
    }

    var mark: Mark { Mark(chunk: chunk, used: used) }

    func release(to mark: Mark) {
        chunk = mark.chunk
        used = mark.used
    }

    /// `count` floats, 64-byte aligned, uninitialised.
    func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = (max(count, 1) + 15) & ~15
        while chunk < chunks.count {
            if used + n <= chunks[chunk].capacity {
                let p = chunks[chunk].base + used
                used += n
                return p
            }
            chunk += 1
            used = 0
        }
        let capacity = max(n, Self.minimumChunk)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * 4, alignment: 64)
        chunks.append((raw.bindMemory(to: Float.self, capacity: capacity), capacity))
        chunk = chunks.count - 1
        used = n
        return chunks[chunk].base
    }

    /// Total floats held, for memory reports.
    var capacity: Int { chunks.reduce(0) { $0 + $1.capacity } }
}
