/// zlib (RFC 1950) and DEFLATE (RFC 1951) compression: LZ77 over a 32 KiB window with a
/// hash-chain matcher and lazy matching, then each block of at most 16384 symbols written as
/// whichever is smallest of stored, fixed-Huffman and dynamic-Huffman (codes of at most 15
/// bits, the code-length code at most 7, by package-merge). The output is deterministic.
public enum Deflate {
    public static let defaultLevel = 6

    /// A zlib stream of `bytes`. `level` is 0 (stored blocks only) to 9 (the longest search);
    /// as in zlib, 1 to 3 take the first good match, 4 and up look one byte ahead for a better one.
    public static func compress(_ bytes: [UInt8], level: Int = defaultLevel) -> [UInt8] {
        bytes.withUnsafeBytes { compress($0, level: level) }
    }

    public static func compress(_ bytes: UnsafeRawBufferPointer, level: Int = defaultLevel) -> [UInt8] {
        compressReporting(bytes, level: level).output
    }

    /// The stream and what its blocks were (for tests, which may also shorten the blocks).
    static func compressReporting(_ bytes: UnsafeRawBufferPointer, level: Int,
                                  blockSymbols: Int = DeflateBlockWriter.defaultBlockSymbols)
        -> (output: [UInt8], report: DeflateBlockWriter.Report)
    {
        precondition((0...9).contains(level), "Deflate level \(level) is not 0…9")
        let input = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var blocks = DeflateBlockWriter(input: input, capacity: bytes.count / 8 + 64, blockSymbols: blockSymbols)
        // CMF: method 8 (DEFLATE), 32 KiB window; FLG: the level class, then check bits
        // making CMF * 256 + FLG a multiple of 31.
        let cmf = 0x78
        let levelClass = level <= 1 ? 0 : level <= 5 ? 1 : level == 6 ? 2 : 3
        var flg = levelClass << 6
        flg += (31 - (cmf << 8 | flg) % 31) % 31
        blocks.out.bytes = [UInt8(cmf), UInt8(flg)]

        if level == 0 {
            blocks.storeAll(bytes.count)
        } else {
            if let input { LZ77Matcher(input: input, count: bytes.count, level: level).run(into: &blocks) }
            blocks.writeBlock(final: true)
        }
        blocks.out.alignToByte()
        let adler = Checksum.adler32(bytes)
        blocks.out.bytes += [UInt8(adler >> 24), UInt8(adler >> 16 & 0xFF), UInt8(adler >> 8 & 0xFF), UInt8(adler & 0xFF)]
        return (blocks.out.bytes, blocks.report)
    }
}

/// Finds LZ77 matches: for every position, a chain of the earlier positions whose next three
/// bytes hash alike, newest first, searched for the longest match within 32768 bytes.
struct LZ77Matcher {
    static let window = 32768
    static let minMatch = 3
    static let maxMatch = 258
    static let hashBits = 15

    /// zlib's tuning per level: stop after `chain` candidates (a quarter of them when the
    /// match in hand is already `good`), stop at a match of `nice`, and only look one byte
    /// ahead for a longer match when the one in hand is shorter than `lazy`.
    struct Tuning {
        let good: Int
        let lazy: Int
        let nice: Int
        let chain: Int
    }

    static let tunings: [Tuning] = [
        Tuning(good: 0, lazy: 0, nice: 0, chain: 0),  // level 0: stored, no matching
        Tuning(good: 4, lazy: 3, nice: 8, chain: 4),
        Tuning(good: 4, lazy: 3, nice: 16, chain: 8),
        Tuning(good: 4, lazy: 3, nice: 32, chain: 32),
        Tuning(good: 4, lazy: 4, nice: 16, chain: 16),
        Tuning(good: 8, lazy: 16, nice: 32, chain: 32),
        Tuning(good: 8, lazy: 16, nice: 128, chain: 128),
        Tuning(good: 8, lazy: 32, nice: 128, chain: 256),
        Tuning(good: 32, lazy: 128, nice: 258, chain: 1024),
        Tuning(good: 32, lazy: 258, nice: 258, chain: 4096),
    ]

    let data: UnsafePointer<UInt8>
    let count: Int
    let tuning: Tuning

    init(input: UnsafePointer<UInt8>, count: Int, level: Int) {
        data = input
        self.count = count
        tuning = Self.tunings[level]
    }

    /// Sends the whole input to `blocks` as literals and matches.
    func run(into blocks: inout DeflateBlockWriter) {
        let n = count
        let p = data
        let mask = Self.window - 1
        // head[hash]: the newest position with that hash; prev[position & mask]: the
        // position before it on the same chain. -1 ends a chain.
        let head = UnsafeMutablePointer<Int>.allocate(capacity: 1 << Self.hashBits)
        head.initialize(repeating: -1, count: 1 << Self.hashBits)
        let prev = UnsafeMutablePointer<Int>.allocate(capacity: Self.window)
        prev.initialize(repeating: -1, count: Self.window)
        defer {
            head.deallocate()
            prev.deallocate()
        }

        @inline(__always)
        func hash(_ i: Int) -> Int {
            let v = UInt32(p[i]) | UInt32(p[i + 1]) << 8 | UInt32(p[i + 2]) << 16
            return Int(truncatingIfNeeded: (v &* 0x9E37_79B1) >> UInt32(32 - Self.hashBits))
        }

        @inline(__always)
        func insert(_ i: Int) {
            guard i + Self.minMatch <= n else { return }
            let h = hash(i)
            prev[i & mask] = head[h]
            head[h] = i
        }

        // The lazy evaluation of zlib's deflate_slow: the match found at i - 1 is held back
        // until the search at i shows whether starting one byte later gives a longer one.
        var i = 0
        var held = false
        var heldLength = 0
        var heldDistance = 0
        while i < n {
            var length = 0
            var distance = 0
            if i + Self.minMatch <= n {
                let h = hash(i)
                if !(held && heldLength >= tuning.lazy) {
                    let chain = held && heldLength >= tuning.good ? tuning.chain >> 2 : tuning.chain
                    (length, distance) = longestMatch(at: i, candidate: head[h], longerThan: held ? heldLength : 0,
                                                      chain: max(chain, 1), prev: prev)
                }
                // Inserted after the search, so a candidate's chain link is never this
                // position's (they share a slot when 32768 apart).
                prev[i & mask] = head[h]
                head[h] = i
            }
            if held {
                if heldLength >= Self.minMatch && length <= heldLength {
                    blocks.match(length: heldLength, distance: heldDistance)
                    let end = i - 1 + heldLength
                    var j = i + 1
                    while j < end {
                        insert(j)
                        j += 1
                    }
                    i = end
                    held = false
                    continue
                }
                blocks.literal(p[i - 1])
            }
            held = true
            heldLength = length
            heldDistance = distance
            i += 1
        }
        // The last position can start no match.
        if held { blocks.literal(p[n - 1]) }
    }

    /// The longest match at `i` longer than `longerThan` (and at least 3), as (length, distance),
    /// or (0, 0).
    @inline(__always)
    func longestMatch(at i: Int, candidate firstCandidate: Int, longerThan: Int, chain: Int,
                      prev: UnsafeMutablePointer<Int>) -> (Int, Int)
    {
        let p = data
        let maxLength = min(Self.maxMatch, count - i)
        var best = max(longerThan, Self.minMatch - 1)
        guard best < maxLength else { return (0, 0) }
        var bestDistance = 0
        let oldest = i - Self.window
        let nice = tuning.nice
        let raw = UnsafeRawPointer(p)
        let first = p[i]
        // The two bytes ending where a longer match would end (as zlib's scan_end): a
        // candidate that differs there cannot beat `best`.
        var end = raw.loadUnaligned(fromByteOffset: i &+ best &- 1, as: UInt16.self)
        var candidate = firstCandidate
        var left = chain
        while candidate >= 0 && candidate >= oldest && left > 0 {
            if raw.loadUnaligned(fromByteOffset: candidate &+ best &- 1, as: UInt16.self) == end && p[candidate] == first {
                let length = Self.matchLength(p + candidate, p + i, maxLength)
                if length > best {
                    best = length
                    bestDistance = i &- candidate
                    if length >= nice || length >= maxLength { break }
                    end = raw.loadUnaligned(fromByteOffset: i &+ best &- 1, as: UInt16.self)
                }
            }
            let next = prev[candidate & (Self.window - 1)]
            if next >= candidate { break }
            candidate = next
            left &-= 1
        }
        // A 3-byte match far away costs about as much as three literals (zlib's TOO_FAR).
        if bestDistance == 0 || (best == Self.minMatch && bestDistance > 4096) { return (0, 0) }
        return (best, bestDistance)
    }

    /// How many bytes at `a` and `b` agree, up to `limit`; 8 bytes at a time.
    @inline(__always)
    static func matchLength(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ limit: Int) -> Int {
        var n = 0
        let ra = UnsafeRawPointer(a)
        let rb = UnsafeRawPointer(b)
        while n + 8 <= limit {
            let x = UInt64(littleEndian: ra.loadUnaligned(fromByteOffset: n, as: UInt64.self))
                ^ UInt64(littleEndian: rb.loadUnaligned(fromByteOffset: n, as: UInt64.self))
            if x != 0 { return n + x.trailingZeroBitCount / 8 }
            n += 8
        }
        while n < limit && a[n] == b[n] { n += 1 }
        return n
    }
}
