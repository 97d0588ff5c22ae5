/// The activation memory of one inference: a single block, carved by a bump allocator with
/// mark/release. Its size is the plan: a dry run of the graph at an input size records the peak,
/// then one block of that size serves every later inference at that size with no allocation.
final class Int8Arena {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    private var used = 0
    private(set) var peak = 0
    /// In planning mode allocations only count bytes; the returned pointers must not be used.
    var planning = false

    deinit { base?.deallocate() }

    func reset() {
        used = 0
    }

    var mark: Int { used }

    func release(to mark: Int) { used = mark }

    /// `count` elements of `T`, 64-byte aligned.
    func allocate<T>(_ type: T.Type, _ count: Int) -> UnsafeMutablePointer<T> {
        let bytes = (max(count, 1) * MemoryLayout<T>.stride + 63) & ~63
        let offset = used
        used += bytes
        peak = max(peak, used)
        if planning {
            // A valid, aligned, never-dereferenced address; planning runs no kernels.
            return UnsafeMutableRawPointer(bitPattern: 64)!.assumingMemoryBound(to: T.self)
        }
        precondition(used <= capacity, "activation arena overflow: the memory plan does not match the run")
        return (base! + offset).bindMemory(to: T.self, capacity: count)
    }

    /// Allocates the block for the peak found by planning.
    func commit() {
        base?.deallocate()
        capacity = peak
        base = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 64), alignment: 64)
        planning = false
        used = 0
    }
}
