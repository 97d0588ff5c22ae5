#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MVFormats

/// zlib (RFC 1950) and DEFLATE (RFC 1951) decompression: stored, fixed-Huffman and
/// dynamic-Huffman blocks, with the Adler-32 of a zlib stream checked.
///
/// The output never grows past a limit given by the caller, so a small stream that expands
/// enormously (a "zip bomb") is refused instead of exhausting memory.
public enum Inflate {
    /// Decompresses a zlib stream; bytes after it are ignored.
    public static func zlib(_ input: [UInt8], maxOutput: Int) throws -> [UInt8] {
        try input.withUnsafeBytes { try zlib($0, maxOutput: maxOutput) }
    }

    public static func zlib(_ input: UnsafeRawBufferPointer, maxOutput: Int) throws -> [UInt8] {
        let out = try zlibBuffer(input, maxOutput: maxOutput, expectedSize: nil)
        return out.array()
    }

    /// Decompresses raw DEFLATE data; returns the output and how many input bytes it used.
    public static func deflate(_ input: [UInt8], maxOutput: Int) throws -> (output: [UInt8], consumed: Int) {
        try input.withUnsafeBytes { raw in
            let out = InflateOutput(capacity: min(maxOutput, max(raw.count * 4, 1024)), limit: maxOutput)
            var bits = InflateBits(raw)
            try inflate(&bits, into: out)
            return (out.array(), bits.alignedBytePosition())
        }
    }

    /// zlib decompression into an owned buffer (no final copy). With `expectedSize`, the
    /// buffer is allocated at that size up front. A missing or wrong Adler-32 goes to
    /// `checksumProblem`, which throws by default (the data itself is complete by then).
    static func zlibBuffer(_ input: UnsafeRawBufferPointer, maxOutput: Int, expectedSize: Int?,
                           checksumProblem: (String) throws -> Void = { throw InputError($0) }) throws -> InflateOutput {
        guard input.count >= 2 else { throw InputError("truncated zlib stream") }
        let cmf = input[0]
        let flg = input[1]
        guard cmf & 0x0F == 8, cmf >> 4 <= 7 else { throw InputError("bad zlib header: not DEFLATE (CMF \(cmf))") }
        guard (Int(cmf) << 8 | Int(flg)) % 31 == 0 else { throw InputError("bad zlib header check bits") }
        guard flg & 0x20 == 0 else { throw InputError("unsupported zlib stream: preset dictionary") }
        let capacity = expectedSize ?? min(maxOutput, max(input.count * 4, 1024))
        let out = InflateOutput(capacity: min(capacity, maxOutput), limit: maxOutput)
        var bits = InflateBits(UnsafeRawBufferPointer(rebasing: input[2...]))
        try inflate(&bits, into: out)
        let p = bits.alignedBytePosition() + 2
        guard p + 4 <= input.count else {
            try checksumProblem("truncated zlib stream: missing Adler-32 checksum")
            return out
        }
        let stored = UInt32(input[p]) << 24 | UInt32(input[p + 1]) << 16 | UInt32(input[p + 2]) << 8 | UInt32(input[p + 3])
        let actual = Checksum.adler32(UnsafeRawBufferPointer(start: out.base, count: out.count))
        if stored != actual { try checksumProblem("corrupt zlib stream: Adler-32 mismatch") }
        return out
    }

    /// Decodes DEFLATE blocks until the final one.
    static func inflate(_ bits: inout InflateBits, into out: InflateOutput) throws {
        while true {
            let final = try bits.take(1)
            let type = try bits.take(2)
            switch type {
            case 0: try storedBlock(&bits, out)
            case 1: try huffmanBlock(&bits, out, InflateTables.fixedLiteral, InflateTables.fixedDistance)
            case 2:
                let (lit, dist) = try dynamicTables(&bits)
                try huffmanBlock(&bits, out, lit, dist)
            default: throw InputError("corrupt DEFLATE data: reserved block type 3")
            }
            if final == 1 { return }
        }
    }

    static func storedBlock(_ bits: inout InflateBits, _ out: InflateOutput) throws {
        bits.dropToByteBoundary()
        let len = try bits.take(16)
        let nlen = try bits.take(16)
        guard len == ~nlen & 0xFFFF else { throw InputError("corrupt DEFLATE data: stored block length check failed") }
        try bits.copyBytes(len, into: out)
    }

    /// The code-length alphabet's order in a dynamic block header.
    static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    static func dynamicTables(_ bits: inout InflateBits) throws -> (InflateTable, InflateTable) {
        let hlit = try bits.take(5) + 257
        let hdist = try bits.take(5) + 1
        let hclen = try bits.take(4) + 4
        guard hlit <= 286, hdist <= 30 else { throw InputError("corrupt DEFLATE data: too many length or distance codes") }
        var codeLengths = [UInt8](repeating: 0, count: 19)
        for i in 0..<hclen { codeLengths[codeLengthOrder[i]] = UInt8(try bits.take(3)) }
        let codeLengthTable = try InflateTable(lengths: codeLengths, allowIncomplete: false)
        var lengths = [UInt8](repeating: 0, count: hlit + hdist)
        var i = 0
        while i < lengths.count {
            bits.refill()
            let sym = try codeLengthTable.decode(&bits)
            var repeatValue: UInt8 = 0
            var count = 0
            switch sym {
            case 0...15:
                lengths[i] = UInt8(sym)
                i += 1
                continue
            case 16:
                guard i > 0 else { throw InputError("corrupt DEFLATE data: repeat with no previous length") }
                repeatValue = lengths[i - 1]
                count = 3 + (try bits.take(2))
            case 17: count = 3 + (try bits.take(3))
            default: count = 11 + (try bits.take(7))
            }
            guard i + count <= lengths.count else { throw InputError("corrupt DEFLATE data: code lengths overflow") }
            for _ in 0..<count {
                lengths[i] = repeatValue
                i += 1
            }
        }
        try bits.checkNotOverrun()
        guard lengths[256] != 0 else { throw InputError("corrupt DEFLATE data: no end-of-block code") }
        let lit = try InflateTable(lengths: Array(lengths[0..<hlit]), allowIncomplete: true)
        let dist = try InflateTable(lengths: Array(lengths[hlit...]), allowIncomplete: true)
        return (lit, dist)
    }

    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    static func huffmanBlock(_ bits: inout InflateBits, _ out: InflateOutput, _ lit: InflateTable, _ dist: InflateTable) throws {
        try lengthBase.withUnsafeBufferPointer { lb in
        try lengthExtra.withUnsafeBufferPointer { le in
        try distanceBase.withUnsafeBufferPointer { db in
        try distanceExtra.withUnsafeBufferPointer { de in
            while true {
                // One refill covers a literal/length code (15 bits) with its 5 extra bits and a
                // distance code (15) with its 13 extra bits.
                bits.refill()
                let sym = try lit.decode(&bits)
                if bits.padding > bits.count { throw InputError("truncated DEFLATE data") }
                if sym < 256 {
                    try out.append(UInt8(truncatingIfNeeded: sym))
                    continue
                }
                if sym == 256 { break }
                let li = sym - 257
                guard li < 29 else { throw InputError("corrupt DEFLATE data: invalid length code \(sym)") }
                let length = lb[li] + bits.takeUnchecked(le[li])
                let ds = try dist.decode(&bits)
                guard ds < 30 else { throw InputError("corrupt DEFLATE data: invalid distance code \(ds)") }
                let distance = db[ds] + bits.takeUnchecked(de[ds])
                try bits.checkNotOverrun()
                try out.copyMatch(distance: distance, length: length)
            }
            try bits.checkNotOverrun()
        }}}}
    }
}

/// The growing output of an inflate, never larger than `limit`.
final class InflateOutput {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    private(set) var count = 0
    let limit: Int

    init(capacity: Int, limit: Int) {
        self.capacity = max(capacity, 16)
        self.limit = limit
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    func array() -> [UInt8] {
        Array(UnsafeBufferPointer(start: base, count: count))
    }

    /// Makes room for `extra` more bytes, or throws when that passes the limit.
    @inline(never)
    func reserve(_ extra: Int) throws {
        let needed = count + extra
        guard needed <= limit else {
            throw InputError("decompressed data is larger than expected (more than \(limit) bytes)")
        }
        guard needed > capacity else { return }
        var newCapacity = capacity
        while newCapacity < needed { newCapacity = newCapacity > limit / 2 ? limit : newCapacity * 2 }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.update(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    @inline(__always)
    func append(_ byte: UInt8) throws {
        if count >= capacity { try reserve(1) }
        base[count] = byte
        count += 1
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        try reserve(bytes.count)
        if let src = bytes.baseAddress {
            (base + count).update(from: src.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        }
        count += bytes.count
    }

    @inline(__always)
    func copyMatch(distance: Int, length: Int) throws {
        guard distance <= count else { throw InputError("corrupt DEFLATE data: distance \(distance) reaches before the start") }
        if count + length > capacity { try reserve(length) }
        let dst = base + count
        let src = dst - distance
        // Byte by byte: an overlapping match repeats the bytes it has just written.
        for i in 0..<length { dst[i] = src[i] }
        count += length
    }
}

/// DEFLATE's bit stream: least significant bit first. Past the end it supplies zeros and
/// counts them, so a truncated stream is reported rather than read out of bounds.
struct InflateBits {
    let data: UnsafePointer<UInt8>?
    let size: Int
    private(set) var position = 0
    var buffer: UInt64 = 0
    var count = 0
    var padding = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        data = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        size = bytes.count
    }

    @inline(__always)
    mutating func refill() {
        while count <= 56 {
            if position < size, let data {
                buffer |= UInt64(data[position]) &<< UInt64(count)
                position += 1
            } else {
                padding += 8
            }
            count += 8
        }
    }

    func checkNotOverrun() throws {
        if padding > count { throw InputError("truncated DEFLATE data") }
    }

    /// `n` bits (n ≤ 32), checking the stream has not run out.
    mutating func take(_ n: Int) throws -> Int {
        if count < n { refill() }
        let v = takeUnchecked(n)
        try checkNotOverrun()
        return v
    }

    /// `n` bits (n ≤ 32) from a buffer already refilled; the caller checks for overrun.
    @inline(__always)
    mutating func takeUnchecked(_ n: Int) -> Int {
        let v = Int(truncatingIfNeeded: buffer & ((1 &<< UInt64(n)) &- 1))
        buffer = buffer &>> UInt64(n)
        count -= n
        return v
    }

    mutating func dropToByteBoundary() {
        let drop = count & 7
        buffer = buffer &>> UInt64(drop)
        count -= drop
    }

    /// The input position of the next unread whole byte.
    func alignedBytePosition() -> Int {
        let buffered = max(count - padding, 0) / 8
        return position - buffered
    }

    /// Copies `n` bytes of a stored block, starting at the next byte boundary.
    mutating func copyBytes(_ n: Int, into out: InflateOutput) throws {
        dropToByteBoundary()
        let start = alignedBytePosition()
        guard let data, padding <= count, n <= size - start else { throw InputError("truncated DEFLATE data (stored block)") }
        try out.append(UnsafeRawBufferPointer(start: data + start, count: n))
        position = start + n
        buffer = 0
        count = 0
        padding = 0
    }
}

/// A canonical Huffman code for DEFLATE: codes up to `fastBits` long decode with one lookup,
/// longer ones bit by bit from the per-length counts.
final class InflateTable: @unchecked Sendable {
    static let fastBits = 10
    /// `symbol << 4 | length`, or 0 for codes longer than `fastBits` (or unused patterns).
    private let fast: UnsafeMutablePointer<UInt16>
    private let counts: UnsafeMutablePointer<Int>
    private let symbols: UnsafeMutablePointer<UInt16>

    /// `allowIncomplete`: a literal/length or distance code may leave patterns unused (zlib
    /// accepts a single code of length 1, and no codes at all); the code-length code may not.
    convenience init(lengths: [UInt8], allowIncomplete: Bool) throws {
        var counts = [Int](repeating: 0, count: 16)
        for l in lengths where l > 15 { throw InputError("corrupt DEFLATE data: code length \(l)") }
        for l in lengths { counts[Int(l)] += 1 }
        var left = 1
        for len in 1...15 {
            left <<= 1
            left -= counts[len]
            guard left >= 0 else { throw InputError("corrupt DEFLATE data: over-subscribed Huffman code") }
        }
        if left > 0 {
            let used = lengths.count - counts[0]
            let longest = lengths.max() ?? 0
            guard allowIncomplete, used == 0 || longest == 1 else {
                throw InputError("corrupt DEFLATE data: incomplete Huffman code")
            }
        }
        self.init(validLengths: lengths)
    }

    /// Builds the table from lengths (each ≤ 15) that are known not to over-subscribe the code.
    init(validLengths lengths: [UInt8]) {
        let fastSize = 1 << Self.fastBits
        fast = .allocate(capacity: fastSize)
        fast.initialize(repeating: 0, count: fastSize)
        counts = .allocate(capacity: 16)
        counts.initialize(repeating: 0, count: 16)
        symbols = .allocate(capacity: max(lengths.count, 1))
        symbols.initialize(repeating: 0, count: max(lengths.count, 1))

        for l in lengths { counts[Int(l & 15)] += 1 }
        counts[0] = 0
        var offsets = [Int](repeating: 0, count: 17)
        for len in 1...15 { offsets[len + 1] = offsets[len] + counts[len] }
        var next = offsets
        for (sym, l) in lengths.enumerated() where l != 0 {
            symbols[next[Int(l & 15)]] = UInt16(sym)
            next[Int(l & 15)] += 1
        }
        // Canonical codes, entered bit-reversed because DEFLATE sends Huffman codes from
        // their most significant bit into a least-significant-first stream.
        var code = 0
        for len in 1...15 {
            for i in offsets[len]..<offsets[len + 1] {
                if len <= Self.fastBits {
                    var reversed = 0
                    for b in 0..<len where code & (1 << b) != 0 { reversed |= 1 << (len - 1 - b) }
                    let entry = symbols[i] << 4 | UInt16(len)
                    var fill = reversed
                    while fill < fastSize {
                        fast[fill] = entry
                        fill += 1 << len
                    }
                }
                code += 1
            }
            code <<= 1
        }
    }

    deinit {
        fast.deallocate()
        counts.deallocate()
        symbols.deallocate()
    }

    /// The next symbol; the caller has refilled `bits` (at least 15 bits available).
    @inline(__always)
    func decode(_ bits: inout InflateBits) throws -> Int {
        let entry = fast[Int(truncatingIfNeeded: bits.buffer & UInt64((1 << Self.fastBits) - 1))]
        if entry != 0 {
            let len = Int(entry & 15)
            bits.buffer = bits.buffer &>> UInt64(len)
            bits.count -= len
            return Int(entry >> 4)
        }
        return try decodeSlow(&bits)
    }

    @inline(never)
    private func decodeSlow(_ bits: inout InflateBits) throws -> Int {
        var code = 0
        var first = 0
        var index = 0
        for len in 1...15 {
            code |= Int(truncatingIfNeeded: (bits.buffer >> UInt64(len - 1)) & 1)
            let n = counts[len]
            if code - first < n {
                bits.buffer = bits.buffer &>> UInt64(len)
                bits.count -= len
                try bits.checkNotOverrun()
                return Int(symbols[index + code - first])
            }
            index += n
            first = (first + n) << 1
            code <<= 1
        }
        throw InputError("corrupt DEFLATE data: invalid Huffman code")
    }
}

/// The fixed Huffman codes of block type 1.
enum InflateTables {
    static let fixedLiteral: InflateTable = {
        var lengths = [UInt8](repeating: 8, count: 288)
        for i in 144..<256 { lengths[i] = 9 }
        for i in 256..<280 { lengths[i] = 7 }
        return InflateTable(validLengths: lengths)
    }()

    /// 32 codes of 5 bits; distance codes 30 and 31 decode but are rejected as invalid.
    static let fixedDistance = InflateTable(validLengths: [UInt8](repeating: 5, count: 32))
}
