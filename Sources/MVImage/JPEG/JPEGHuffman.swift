import MVFormats

/// One Huffman table from a DHT segment, with lookup structures for decoding.
final class JPEGHuffmanTable {
    /// Bits looked up at once; codes up to this length decode with one table read.
    static let fastBits = 9

    /// Indexed by the next `fastBits` bits: `length << 8 | symbol`, or 0 when the code is longer.
    let fast: UnsafeMutablePointer<UInt16>
    /// For AC tables, indexed like `fast`: when the code and its extra bits both fit in
    /// `fastBits`, `value << 16 | run << 8 | totalLength`; otherwise 0.
    let fastAC: UnsafeMutablePointer<Int32>
    /// `maxCode[l]`: one past the last code of length l, left-aligned in 16 bits (index 17 is a
    /// sentinel above every 16-bit value).
    let maxCode: UnsafeMutablePointer<UInt32>
    /// Added to a code of length l (right-aligned) to give its index in `symbols`.
    let delta: UnsafeMutablePointer<Int32>
    let symbols: UnsafeMutablePointer<UInt8>
    let symbolCount: Int

    /// Builds the table from the 16 code-length counts and the symbols of a DHT segment.
    init(counts: [Int], symbols values: [UInt8]) throws {
        precondition(counts.count == 16)
        let fastSize = 1 << Self.fastBits
        fast = .allocate(capacity: fastSize)
        fast.initialize(repeating: 0, count: fastSize)
        fastAC = .allocate(capacity: fastSize)
        fastAC.initialize(repeating: 0, count: fastSize)
        maxCode = .allocate(capacity: 18)
        maxCode.initialize(repeating: 0, count: 18)
        delta = .allocate(capacity: 17)
        delta.initialize(repeating: 0, count: 17)
        symbolCount = values.count
        symbols = .allocate(capacity: max(values.count, 1))
        symbols.initialize(repeating: 0, count: max(values.count, 1))
        for (i, v) in values.enumerated() { symbols[i] = v }

        // Canonical code assignment (JPEG Annex C): codes of one length are consecutive, and
        // each longer length continues from the previous code shifted left.
        let longest = counts.lastIndex(where: { $0 > 0 }).map { $0 + 1 } ?? 0
        var code = 0
        var index = 0
        for length in 1...16 {
            let n = counts[length - 1]
            // As in libjpeg, no code may be all ones, so the codes of each length used must
            // stay below 2^length (this also rules out over-subscribed tables).
            guard length > longest || code + n < 1 << length else {
                throw InputError("bad JPEG Huffman table (over-subscribed code lengths)")
            }
            delta[length] = Int32(index - code)
            for _ in 0..<n {
                let symbol = values[index]
                if length <= Self.fastBits {
                    let shift = Self.fastBits - length
                    let first = code << shift
                    for low in 0..<(1 << shift) {
                        fast[first | low] = UInt16(length << 8) | UInt16(symbol)
                    }
                }
                code += 1
                index += 1
            }
            maxCode[length] = UInt32(code << (16 - length))
            code <<= 1
        }
        maxCode[17] = UInt32.max

        // Precombined AC entries: run/size symbol plus its magnitude bits, when short enough.
        for peek in 0..<fastSize {
            let entry = fast[peek]
            guard entry != 0 else { continue }
            let length = Int(entry >> 8)
            let symbol = Int(entry & 0xFF)
            let run = symbol >> 4
            let size = symbol & 15
            guard size != 0, length + size <= Self.fastBits else { continue }
            let bits = (peek >> (Self.fastBits - length - size)) & ((1 << size) - 1)
            let value = bits < 1 << (size - 1) ? bits - (1 << size) + 1 : bits
            fastAC[peek] = Int32(value) << 16 | Int32(run << 8 | (length + size))
        }
    }

    /// The lookup pointers as a plain value, so hot loops carry no reference counting. Valid
    /// while the table is alive.
    var lookup: JPEGHuffmanLookup {
        JPEGHuffmanLookup(fast: fast, fastAC: fastAC, maxCode: maxCode, delta: delta, symbols: symbols, symbolCount: symbolCount)
    }

    deinit {
        fast.deallocate()
        fastAC.deallocate()
        maxCode.deallocate()
        delta.deallocate()
        symbols.deallocate()
    }
}

/// See `JPEGHuffmanTable`.
struct JPEGHuffmanLookup {
    let fast: UnsafeMutablePointer<UInt16>
    let fastAC: UnsafeMutablePointer<Int32>
    let maxCode: UnsafeMutablePointer<UInt32>
    let delta: UnsafeMutablePointer<Int32>
    let symbols: UnsafeMutablePointer<UInt8>
    let symbolCount: Int
}

/// Reads the entropy-coded data of a scan, MSB first, removing the stuffed zero after each 0xFF.
///
/// At a marker or at the end of the file it supplies zero bits, as libjpeg does, and counts
/// them: a scan that consumes any of them was truncated or corrupt, which `checkDamage`
/// reports. Invalid codes throw at once, or with `recover` decode as symbol 0 (libjpeg's
/// choice) and are reported by `checkDamage`.
struct JPEGBitReader {
    let data: UnsafePointer<UInt8>
    let end: Int
    private(set) var position: Int
    /// Valid bits, most significant first.
    var buffer: UInt64 = 0
    var count = 0
    /// Zero bits appended after the real data ran out.
    var padding = 0
    /// True once a marker (or the end of the file) has been reached.
    var stopped = false
    /// Whether invalid data is decoded past (recorded in `badDataOffset`) instead of thrown.
    let recover: Bool
    /// Where the first invalid code was met when recovering, or -1.
    var badDataOffset = -1
    /// What it was (a StaticString keeps the reader a plain value in the hot loops).
    var badDataDetail: StaticString = ""
    /// The number n of the RSTn marker the next restart expects (they count 0…7 cyclically).
    var nextRestart = 0

    init(data: UnsafePointer<UInt8>, end: Int, position: Int, recover: Bool) {
        self.data = data
        self.end = end
        self.position = position
        self.recover = recover
    }

    /// The offset of the byte holding the next unread bit (stuffed zero bytes aside): where
    /// damage found by the last code read lies.
    var offsetOfNextBit: Int { position - max(0, count - padding) / 8 }

    @inline(__always)
    mutating func refill() {
        // Fast path: the next 8 bytes hold no 0xFF (so no stuffing and no marker); take as
        // many whole bytes as fit.
        if !stopped, position &+ 8 <= end {
            let word = UInt64(bigEndian: UnsafeRawPointer(data + position).loadUnaligned(as: UInt64.self))
            let inverted = ~word
            if (inverted &- 0x0101_0101_0101_0101) & ~inverted & 0x8080_8080_8080_8080 == 0 {
                let n = (64 &- count) >> 3
                buffer |= (word &>> UInt64(64 &- 8 &* n)) &<< UInt64(64 &- count &- 8 &* n)
                count &+= 8 &* n
                position &+= n
                return
            }
        }
        refillSlow()
    }

    @inline(never)
    mutating func refillSlow() {
        while count <= 56 {
            var byte: UInt64 = 0
            if !stopped, position < end {
                let b = data[position]
                if b != 0xFF {
                    byte = UInt64(b)
                    position += 1
                } else if position + 1 < end, data[position + 1] == 0 {
                    byte = 0xFF
                    position += 2
                } else {
                    stopped = true
                    padding += 8
                }
            } else {
                stopped = true
                padding += 8
            }
            buffer |= byte &<< UInt64(56 - count)
            count += 8
        }
    }

    /// True when bits past the end of the real data have been consumed.
    var overran: Bool { padding > count }

    /// Hands any damage met so far to `policy`: bits read past the end of the file (truncated)
    /// or past a marker (corrupt), or an invalid code when recovering.
    func checkDamage(policy: DamagePolicy) throws {
        if overran {
            try policy.found(position >= end
                ? DamagedImageError(format: "JPEG", damage: .truncated, offset: end, detail: "the image data ends early")
                : DamagedImageError(format: "JPEG", damage: .corruptData, offset: position,
                                    detail: "a scan's entropy-coded data stops at a marker before its last block"))
        }
        if badDataOffset >= 0 {
            try policy.found(DamagedImageError(format: "JPEG", damage: .corruptData, offset: badDataOffset,
                                               detail: badDataDetail.description))
        }
    }

    /// Invalid entropy-coded data: throws, or when recovering notes where it was and returns 0.
    @inline(never)
    mutating func badData(_ detail: StaticString) throws -> Int {
        guard recover else {
            throw DamagedImageError(format: "JPEG", damage: .corruptData, offset: offsetOfNextBit, detail: detail.description)
        }
        if badDataOffset < 0 {
            badDataOffset = offsetOfNextBit
            badDataDetail = detail
        }
        return 0
    }

    @inline(__always)
    mutating func decode(_ table: JPEGHuffmanLookup) throws -> Int {
        if count < 32 { refill() }
        let entry = table.fast[Int(truncatingIfNeeded: buffer &>> UInt64(64 - JPEGHuffmanTable.fastBits))]
        if entry != 0 {
            let length = Int(entry >> 8)
            buffer = buffer &<< UInt64(length)
            count -= length
            return Int(entry & 0xFF)
        }
        return try decodeSlow(table)
    }

    @inline(never)
    mutating func decodeSlow(_ table: JPEGHuffmanLookup) throws -> Int {
        let peek = UInt32(truncatingIfNeeded: buffer &>> 48)
        var length = JPEGHuffmanTable.fastBits + 1
        while peek >= table.maxCode[length] { length += 1 }
        let index = length <= 16 ? Int(peek >> UInt32(16 - length)) + Int(table.delta[length]) : -1
        guard index >= 0, index < table.symbolCount else {
            let symbol = try badData("bad Huffman code")
            // Recovering, as libjpeg(-turbo) does: the 17 bits examined are consumed and the
            // symbol is 0 (a DC difference of 0, or the end of the block).
            buffer = buffer &<< 17
            count -= 17
            return symbol
        }
        buffer = buffer &<< UInt64(length)
        count -= length
        return Int(table.symbols[index])
    }

    /// `n` raw bits (0 ≤ n ≤ 16) as an unsigned value.
    @inline(__always)
    mutating func bits(_ n: Int) -> Int {
        if n == 0 { return 0 }
        if count < n { refill() }
        let v = Int(truncatingIfNeeded: buffer &>> UInt64(64 - n))
        buffer = buffer &<< UInt64(n)
        count -= n
        return v
    }

    @inline(__always)
    mutating func bit() -> Int {
        if count < 1 { refill() }
        let v = Int(truncatingIfNeeded: buffer &>> 63)
        buffer = buffer &<< 1
        count -= 1
        return v
    }

    /// `n` bits read as a JPEG signed magnitude of category n (F.2.2.1 EXTEND).
    @inline(__always)
    mutating func receiveExtend(_ n: Int) -> Int {
        if n == 0 { return 0 }
        let v = bits(n)
        return v < 1 << (n - 1) ? v - (1 << n) + 1 : v
    }

    /// Skips to just past the next RSTn marker, discarding buffered bits, so decoding resumes
    /// at a fresh byte boundary. Whole bytes left unread before the marker belong to no block
    /// (libjpeg's "extraneous bytes before marker"), and a marker out of sequence or missing
    /// means lost data: both are damage, skipped over only when recovering (libjpeg resumes at
    /// the next restart marker the same way).
    mutating func restart(policy: DamagePolicy) throws {
        try checkDamage(policy: policy)
        badDataOffset = -1
        let unread = max(0, count - padding) / 8
        let junkStart = position - unread
        buffer = 0
        count = 0
        padding = 0
        stopped = false
        var skipped = unread
        while position + 1 < end {
            if data[position] == 0xFF {
                let m = data[position + 1]
                if m >= 0xD0 && m <= 0xD7 {
                    let expected = nextRestart
                    nextRestart = (Int(m) - 0xD0 + 1) & 7
                    position += 2
                    if skipped > 0 {
                        try policy.found(DamagedImageError(
                            format: "JPEG", damage: .corruptData, offset: junkStart,
                            detail: "\(skipped) bytes that belong to no block before restart marker RST\(m - 0xD0)"))
                    }
                    if Int(m) - 0xD0 != expected {
                        try policy.found(DamagedImageError(
                            format: "JPEG", damage: .corruptData, offset: position - 2,
                            detail: "restart marker RST\(m - 0xD0) where RST\(expected) was expected"))
                    }
                    return
                }
                if m == 0xFF {  // fill bytes may precede a marker
                    position += 1
                    continue
                }
                if m != 0 { break }  // another marker: no restart here
            }
            position += 1
            skipped += 1
        }
        // Decoding goes on from here: the blocks up to the next restart read zero bits.
        try policy.found(DamagedImageError(format: "JPEG", damage: position + 1 < end ? .corruptData : .truncated,
                                           offset: position, detail: "a restart marker is missing"))
    }
}
