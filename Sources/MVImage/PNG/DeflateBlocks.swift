/// DEFLATE's output bit stream: least significant bit first.
struct DeflateBitWriter {
    var bytes: [UInt8] = []
    private var buffer: UInt64 = 0
    private var count = 0

    /// The bits written so far.
    var bitCount: Int { bytes.count * 8 + count }

    /// Appends the low `n` bits of `value` (n ≤ 32; the bits above them must be zero).
    @inline(__always)
    mutating func put(_ value: UInt32, _ n: Int) {
        buffer |= UInt64(value) &<< UInt64(count)
        count += n
        if count >= 32 {
            bytes.append(UInt8(truncatingIfNeeded: buffer))
            bytes.append(UInt8(truncatingIfNeeded: buffer &>> 8))
            bytes.append(UInt8(truncatingIfNeeded: buffer &>> 16))
            bytes.append(UInt8(truncatingIfNeeded: buffer &>> 24))
            buffer = buffer &>> 32
            count -= 32
        }
    }

    /// Pads with zero bits to a byte boundary and moves every whole byte to `bytes`.
    mutating func alignToByte() {
        count = (count + 7) & ~7
        while count > 0 {
            bytes.append(UInt8(truncatingIfNeeded: buffer))
            buffer = buffer &>> 8
            count -= 8
        }
    }
}

/// Collects the LZ77 symbols of one block at a time and writes each block as whichever of
/// stored, fixed-Huffman or dynamic-Huffman is smallest. A noncopyable struct used in place
/// (not a class), so the per-symbol updates need no run-time exclusivity checks.
struct DeflateBlockWriter: ~Copyable {
    /// A block ends after this many symbols by default (zlib's default buffer size).
    static let defaultBlockSymbols = 16384

    /// What the blocks were, for tests.
    struct Report {
        var stored = 0
        var fixed = 0
        var dynamic = 0
        var longestDistance = 0
    }

    let input: UnsafePointer<UInt8>?
    let maxSymbols: Int
    var out = DeflateBitWriter()
    var report = Report()
    /// A literal is its byte; a match is `1 << 31 | length << 16 | (distance - 1)`.
    private let symbols: UnsafeMutablePointer<UInt32>
    private var symbolCount = 0
    /// 286 literal/length counts, then 30 distance counts.
    private let frequencies: UnsafeMutablePointer<Int>
    /// Extra bits of the block's lengths and distances (the same in fixed and dynamic codes).
    private var extraBits = 0
    /// The input range of the block being collected.
    private var blockStart = 0
    private var position = 0

    init(input: UnsafePointer<UInt8>?, capacity: Int, blockSymbols: Int = defaultBlockSymbols) {
        precondition(blockSymbols > 0)
        self.input = input
        maxSymbols = blockSymbols
        symbols = .allocate(capacity: blockSymbols)
        frequencies = .allocate(capacity: 286 + 30)
        frequencies.initialize(repeating: 0, count: 286 + 30)
        out.bytes.reserveCapacity(capacity)
    }

    deinit {
        symbols.deallocate()
        frequencies.deallocate()
    }

    @inline(__always)
    mutating func literal(_ byte: UInt8) {
        symbols[symbolCount] = UInt32(byte)
        symbolCount += 1
        frequencies[Int(byte)] += 1
        position += 1
        if symbolCount == maxSymbols { writeBlock(final: false) }
    }

    @inline(__always)
    mutating func match(length: Int, distance: Int) {
        assert((3...258).contains(length) && (1...32768).contains(distance), "match \(length) at \(distance)")
        symbols[symbolCount] = 1 << 31 | UInt32(length) << 16 | UInt32(distance - 1)
        symbolCount += 1
        let l = Int(DeflateTables.lengthCode[length])
        frequencies[257 + l] += 1
        let d = DeflateTables.distanceCode(distance - 1)
        frequencies[286 + d] += 1
        extraBits += Inflate.lengthExtra[l] + Inflate.distanceExtra[d]
        report.longestDistance = max(report.longestDistance, distance)
        position += length
        if symbolCount == maxSymbols { writeBlock(final: false) }
    }

    /// Sends the whole input as stored blocks (compression level 0).
    mutating func storeAll(_ count: Int) {
        precondition(symbolCount == 0 && position == 0)
        position = count
        writeStored(final: true)
        report.stored += 1
    }

    /// Writes the collected symbols (possibly none) as one block and starts the next.
    mutating func writeBlock(final: Bool) {
        frequencies[256] += 1
        let literalFrequencies = Array(UnsafeBufferPointer(start: frequencies, count: 286))
        let distanceFrequencies = Array(UnsafeBufferPointer(start: frequencies + 286, count: 30))
        let byteCount = position - blockStart

        // Fixed codes: literals 0-143 8 bits, 144-255 9, lengths 256-279 7, 280-287 8;
        // distances 5.
        var fixedBits = 3 + extraBits
        for (s, f) in literalFrequencies.enumerated() where f != 0 {
            fixedBits += f * Int(DeflateTables.fixedLiteralLengths[s])
        }
        for f in distanceFrequencies { fixedBits += 5 * f }

        let dynamic = DynamicHeader(literalFrequencies: literalFrequencies, distanceFrequencies: distanceFrequencies)
        var dynamicBits = 3 + dynamic.bits + extraBits
        for (s, f) in literalFrequencies.enumerated() { dynamicBits += f * Int(dynamic.literalLengths[s]) }
        for (s, f) in distanceFrequencies.enumerated() { dynamicBits += f * Int(dynamic.distanceLengths[s]) }

        // Stored: a header and alignment per block of at most 65535 bytes.
        let storedBlocks = max(1, (byteCount + 65534) / 65535)
        let firstPadding = (8 - (out.bitCount + 3) % 8) % 8
        let storedBits = 8 * byteCount + storedBlocks * (3 + 32) + firstPadding + (storedBlocks - 1) * 5

        if storedBits <= fixedBits && storedBits <= dynamicBits {
            writeStored(final: final)
            report.stored += 1
        } else if fixedBits <= dynamicBits {
            out.put(final ? 1 : 0, 1)
            out.put(1, 2)
            writeSymbols(literalCodes: DeflateTables.fixedLiteralCodes, distanceCodes: DeflateTables.fixedDistanceCodes)
            report.fixed += 1
        } else {
            out.put(final ? 1 : 0, 1)
            out.put(2, 2)
            dynamic.write(to: &out)
            writeSymbols(literalCodes: DeflateHuffman.codes(dynamic.literalLengths),
                         distanceCodes: DeflateHuffman.codes(dynamic.distanceLengths))
            report.dynamic += 1
        }

        symbolCount = 0
        frequencies.update(repeating: 0, count: 286 + 30)
        extraBits = 0
        blockStart = position
    }

    private mutating func writeStored(final: Bool) {
        var start = blockStart
        repeat {
            let n = min(65535, position - start)
            let last = start + n == position
            out.put(final && last ? 1 : 0, 1)
            out.put(0, 2)
            out.alignToByte()
            out.put(UInt32(n), 16)
            out.put(UInt32(~n & 0xFFFF), 16)
            if n > 0, let input { out.bytes.append(contentsOf: UnsafeBufferPointer(start: input + start, count: n)) }
            start += n
        } while start < position
    }

    private mutating func writeSymbols(literalCodes lit: [UInt32], distanceCodes dist: [UInt32]) {
        let lengthCode = DeflateTables.lengthCode
        let lengthBase = Inflate.lengthBase, lengthExtra = Inflate.lengthExtra
        let distanceBase = Inflate.distanceBase, distanceExtra = Inflate.distanceExtra
        for i in 0..<symbolCount {
            let s = symbols[i]
            if s < 256 {
                let c = lit[Int(s)]
                out.put(c & 0xFFFF, Int(c >> 16))
                continue
            }
            let length = Int(s >> 16 & 0x1FF)
            let distance = Int(s & 0xFFFF) + 1
            let l = Int(lengthCode[length])
            let lc = lit[257 + l]
            out.put(lc & 0xFFFF, Int(lc >> 16))
            out.put(UInt32(length - lengthBase[l]), lengthExtra[l])
            let d = DeflateTables.distanceCode(distance - 1)
            let dc = dist[d]
            out.put(dc & 0xFFFF, Int(dc >> 16))
            out.put(UInt32(distance - distanceBase[d]), distanceExtra[d])
        }
        let end = lit[256]
        out.put(end & 0xFFFF, Int(end >> 16))
    }
}

/// The code lengths of a dynamic-Huffman block and how its header sends them.
struct DynamicHeader {
    let literalLengths: [UInt8]
    let distanceLengths: [UInt8]
    /// HLIT and HDIST: the literal/length and distance lengths sent (trailing zeros dropped).
    let literalCount: Int
    let distanceCount: Int
    /// The code-length alphabet's symbols (0-18) with their extra-bit values.
    let runs: [(symbol: Int, extra: UInt32)]
    let codeLengthLengths: [UInt8]
    let codeLengthCount: Int
    /// The header's size in bits, after the 3 block-type bits.
    let bits: Int

    static let repeatExtraBits = [16: 2, 17: 3, 18: 7]

    init(literalFrequencies: [Int], distanceFrequencies: [Int]) {
        literalLengths = DeflateHuffman.lengths(literalFrequencies, maxBits: 15)
        distanceLengths = DeflateHuffman.lengths(distanceFrequencies, maxBits: 15)
        literalCount = max(257, (literalLengths.lastIndex { $0 != 0 } ?? 0) + 1)
        distanceCount = max(1, (distanceLengths.lastIndex { $0 != 0 } ?? 0) + 1)

        // One sequence of HLIT + HDIST lengths, run-length coded: 16 repeats the previous
        // length 3-6 times, 17 gives 3-10 zeros, 18 gives 11-138 zeros.
        let all = Array(literalLengths[0..<literalCount]) + Array(distanceLengths[0..<distanceCount])
        var runs: [(symbol: Int, extra: UInt32)] = []
        var i = 0
        while i < all.count {
            let l = all[i]
            var run = 1
            while i + run < all.count && all[i + run] == l { run += 1 }
            i += run
            if l == 0 {
                while run >= 11 {
                    let k = min(run, 138)
                    runs.append((18, UInt32(k - 11)))
                    run -= k
                }
                if run >= 3 {
                    runs.append((17, UInt32(run - 3)))
                    run = 0
                }
            } else {
                runs.append((Int(l), 0))
                run -= 1
                while run >= 3 {
                    let k = min(run, 6)
                    runs.append((16, UInt32(k - 3)))
                    run -= k
                }
            }
            for _ in 0..<run { runs.append((Int(l), 0)) }
        }
        self.runs = runs

        var frequencies = [Int](repeating: 0, count: 19)
        for r in runs { frequencies[r.symbol] += 1 }
        let codeLengthLengths = DeflateHuffman.lengths(frequencies, maxBits: 7)
        self.codeLengthLengths = codeLengthLengths
        let order = Inflate.codeLengthOrder
        codeLengthCount = max(4, (order.lastIndex { codeLengthLengths[$0] != 0 } ?? 0) + 1)

        var bits = 5 + 5 + 4 + 3 * codeLengthCount
        for r in runs { bits += Int(codeLengthLengths[r.symbol]) + (Self.repeatExtraBits[r.symbol] ?? 0) }
        self.bits = bits
    }

    func write(to out: inout DeflateBitWriter) {
        out.put(UInt32(literalCount - 257), 5)
        out.put(UInt32(distanceCount - 1), 5)
        out.put(UInt32(codeLengthCount - 4), 4)
        for i in 0..<codeLengthCount { out.put(UInt32(codeLengthLengths[Inflate.codeLengthOrder[i]]), 3) }
        let codes = DeflateHuffman.codes(codeLengthLengths)
        for r in runs {
            let c = codes[r.symbol]
            out.put(c & 0xFFFF, Int(c >> 16))
            if let extra = Self.repeatExtraBits[r.symbol] { out.put(r.extra, extra) }
        }
    }
}

enum DeflateTables {
    /// For each match length 3…258, its length code minus 257 (0…28).
    static let lengthCode: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 259)
        for code in 0..<29 {
            let base = Inflate.lengthBase[code]
            for length in base..<min(base + (1 << Inflate.lengthExtra[code]), 259) { table[length] = UInt8(code) }
        }
        // Code 27 (284) reaches 258 too, but 258 must be sent as code 28 (285), which comes later.
        return table
    }()

    /// The distance code (0…29) of a distance minus 1 (0…32767): two codes per power of two.
    @inline(__always)
    static func distanceCode(_ d: Int) -> Int {
        if d < 4 { return d }
        let top = Int.bitWidth - 1 - d.leadingZeroBitCount
        return 2 * top + ((d >> (top - 1)) & 1)
    }

    static let fixedLiteralLengths: [UInt8] = (0..<288).map { s in
        s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8
    }
    static let fixedLiteralCodes = DeflateHuffman.codes(fixedLiteralLengths)
    static let fixedDistanceCodes = DeflateHuffman.codes([UInt8](repeating: 5, count: 30))
}
