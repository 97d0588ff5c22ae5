/// Length-limited Huffman codes for DEFLATE compression.
enum DeflateHuffman {
    /// Optimal code lengths, none longer than `maxBits`, by package-merge (Larmore and
    /// Hirschberg): a symbol of frequency 0 gets no code. Used symbols always form a complete
    /// code of at least two codes: with fewer than two used, one unused symbol is given a code
    /// too (as zlib does), so every decoder accepts the table.
    static func lengths(_ frequencies: [Int], maxBits: Int) -> [UInt8] {
        var lengths = [UInt8](repeating: 0, count: frequencies.count)
        var leaves = frequencies.indices.filter { frequencies[$0] > 0 }
        if leaves.count < 2 {
            let first = leaves.first ?? 0
            lengths[first] = 1
            lengths[first == 0 ? 1 : 0] = 1
            return lengths
        }
        // Lightest first; equal weights by symbol, so the result is deterministic.
        leaves.sort { frequencies[$0] != frequencies[$1] ? frequencies[$0] < frequencies[$1] : $0 < $1 }
        let n = leaves.count
        precondition(n <= 1 << maxBits, "\(n) symbols cannot have codes of at most \(maxBits) bits")
        let weights = leaves.map { frequencies[$0] }

        // Each level's list merges the leaves with the packages (pairs) of the level below,
        // lightest first; only its first 2n-2 items can ever be chosen. `isPackage[d]` keeps
        // the merge order of level d (0 = the deepest, maxBits-1 = the top).
        let keep = 2 * n - 2
        var isPackage: [[Bool]] = [[Bool](repeating: false, count: n)]
        var current = weights
        for _ in 1..<maxBits {
            let packages = current.count / 2
            var merged: [Int] = []
            var flags: [Bool] = []
            merged.reserveCapacity(keep)
            flags.reserveCapacity(keep)
            var leaf = 0
            var package = 0
            while merged.count < keep && (leaf < n || package < packages) {
                let packageWeight = package < packages ? current[2 * package] + current[2 * package + 1] : Int.max
                if leaf < n && weights[leaf] <= packageWeight {
                    merged.append(weights[leaf])
                    flags.append(false)
                    leaf += 1
                } else {
                    merged.append(packageWeight)
                    flags.append(true)
                    package += 1
                }
            }
            current = merged
            isPackage.append(flags)
        }
        // Choosing the first 2n-2 items of the top list: a leaf's code length is the number
        // of levels whose chosen prefix contains it; the chosen packages of a level choose
        // twice as many items of the level below.
        var sortedLengths = [Int](repeating: 0, count: n)
        var chosen = keep
        for level in stride(from: maxBits - 1, through: 0, by: -1) {
            let flags = isPackage[level]
            var leavesChosen = 0
            for k in 0..<chosen where !flags[k] { leavesChosen += 1 }
            for k in 0..<leavesChosen { sortedLengths[k] += 1 }
            chosen = 2 * (chosen - leavesChosen)
        }
        for (k, symbol) in leaves.enumerated() { lengths[symbol] = UInt8(sortedLengths[k]) }
        return lengths
    }

    /// The canonical codes (RFC 1951, 3.2.2) of `lengths`, each as `reversedCode | length << 16`:
    /// the code's bits reversed, because DEFLATE sends a Huffman code from its most
    /// significant bit into a least-significant-bit-first stream.
    static func codes(_ lengths: [UInt8]) -> [UInt32] {
        var counts = [Int](repeating: 0, count: 16)
        for l in lengths { counts[Int(l)] += 1 }
        counts[0] = 0
        var next = [Int](repeating: 0, count: 16)
        var code = 0
        for bits in 1...15 {
            code = (code + counts[bits - 1]) << 1
            next[bits] = code
        }
        return lengths.map { l in
            let len = Int(l)
            guard len > 0 else { return 0 }
            let c = next[len]
            next[len] += 1
            var reversed = 0
            for b in 0..<len where c & (1 << b) != 0 { reversed |= 1 << (len - 1 - b) }
            return UInt32(reversed) | UInt32(len) << 16
        }
    }
}
