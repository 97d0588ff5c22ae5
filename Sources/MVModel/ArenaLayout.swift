/// Offsets of an executor's buffers inside one arena, from their lifetimes: buffers whose
/// lifetimes (ranges of operator indices) overlap never overlap in memory. Greedy by size, largest
/// first, each at the lowest aligned offset that fits (TensorFlow Lite's arena planner works the
/// same way). Computed once per input size; every inference then runs in the one block.
public struct ArenaLayout: Sendable {
    public struct Buffer: Sendable {
        public var bytes: Int
        /// Operator indices during which the buffer is live, both included.
        public var firstUse: Int
        public var lastUse: Int

        public init(bytes: Int, firstUse: Int, lastUse: Int) {
            self.bytes = bytes
            self.firstUse = firstUse
            self.lastUse = lastUse
        }
    }

    /// Byte offset of each buffer, in the order given.
    public let offsets: [Int]
    /// Bytes of the whole arena.
    public let size: Int

    public static let alignment = 64

    public init(_ buffers: [Buffer]) {
        func aligned(_ n: Int) -> Int { (n + Self.alignment - 1) / Self.alignment * Self.alignment }
        let order = buffers.indices.sorted {
            let a = buffers[$0], b = buffers[$1]
            return a.bytes != b.bytes ? a.bytes > b.bytes : a.firstUse != b.firstUse ? a.firstUse < b.firstUse : $0 < $1
        }
        var offsets = [Int](repeating: 0, count: buffers.count)
        var placed: [Int] = []
        var size = 0
        for i in order {
            let b = buffers[i]
            let bytes = aligned(max(b.bytes, 1))
            // The placed buffers live at the same time as this one, by offset.
            let live = placed.filter { buffers[$0].firstUse <= b.lastUse && b.firstUse <= buffers[$0].lastUse }
                .sorted { offsets[$0] < offsets[$1] }
            var offset = 0
            for j in live {
                if offsets[j] - offset >= bytes { break }
                offset = max(offset, aligned(offsets[j] + max(buffers[j].bytes, 1)))
            }
            offsets[i] = offset
            size = max(size, offset + bytes)
            placed.append(i)
        }
        self.offsets = offsets
        self.size = size
    }
}
