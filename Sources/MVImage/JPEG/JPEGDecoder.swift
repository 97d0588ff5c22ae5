import MVFormats

/// Baseline and progressive Huffman JPEG, 8-bit, 1/3/4 components, any integer sampling
/// factors, restart intervals. Output matches libjpeg-turbo as Pillow configures it: islow
/// IDCT, fancy (triangle) chroma upsampling, libjpeg's YCbCr tables, and Pillow's CMYK
/// conversion for 4-component files.
enum JPEGDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer, budget: PixelBudget, policy: DamagePolicy) throws -> RGBImage {
        var state = try JPEGDecoderState(bytes: bytes, budget: budget, policy: policy)
        try state.run()
        return try state.output()
    }
}

struct JPEGDecoderState {
    let bytes: UnsafeRawBufferPointer
    let data: UnsafePointer<UInt8>
    let budget: PixelBudget
    let policy: DamagePolicy
    var reader: ByteReader

    var frame: JPEGFrame?
    var dcTables: [JPEGHuffmanTable?] = [nil, nil, nil, nil]
    var acTables: [JPEGHuffmanTable?] = [nil, nil, nil, nil]
    var quantTables: [[Int32]?] = [nil, nil, nil, nil]
    var restartInterval = 0
    var sawJFIF = false
    var adobeTransform: Int?
    var scansDecoded = 0
    var buffersAllocated = false

    init(bytes: UnsafeRawBufferPointer, budget: PixelBudget, policy: DamagePolicy) throws {
        guard let base = bytes.baseAddress, bytes.count >= 2 else {
            throw DamagedImageError(format: "JPEG", damage: .truncated, offset: bytes.count, detail: "the file ends after its signature")
        }
        self.bytes = bytes
        data = base.assumingMemoryBound(to: UInt8.self)
        self.budget = budget
        self.policy = policy
        reader = ByteReader(bytes, truncatedMessage: "the file ends inside a marker segment", fileFormat: "JPEG")
    }

    /// Reads markers until EOI (or the end of the data after at least one scan).
    mutating func run() throws {
        guard try reader.u8() == 0xFF, try reader.u8() == 0xD8 else { throw InputError("not a JPEG file (no SOI marker)") }
        while true {
            guard let marker = try nextMarker() else {
                guard scansDecoded > 0 else {
                    throw DamagedImageError(format: "JPEG", damage: .truncated, offset: bytes.count,
                                            detail: "the file ends before any image data")
                }
                // Data ended without EOI: later scans, or the end of this one, may be missing.
                // libjpeg decodes what the scans gave with a warning; Pillow refuses.
                try policy.found(DamagedImageError(format: "JPEG", damage: .truncated, offset: bytes.count,
                                                   detail: "the file ends without an end-of-image (EOI) marker"))
                return
            }
            switch marker {
            case 0xD9:  // EOI
                guard scansDecoded > 0 else { throw InputError("JPEG file has no image data (EOI before any scan)") }
                return
            case 0xC0, 0xC1, 0xC2:
                try readFrame(progressive: marker == 0xC2)
            case 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF:
                let kind = marker >= 0xC9 ? "arithmetic-coded" : (marker == 0xC3 ? "lossless" : "hierarchical")
                throw InputError("unsupported JPEG: \(kind) (SOF\(marker - 0xC0))")
            case 0xC4: try readHuffmanTables()
            case 0xDB: try readQuantTables()
            case 0xDD: try readRestartInterval()
            case 0xDA: try readScan()
            case 0xE0: try readAPP0()
            case 0xEE: try readAPP14()
            case 0xD8: throw InputError("corrupt JPEG data: second SOI marker")
            case 0xD0...0xD7, 0x01: continue  // stray RSTn / TEM carry no segment
            default: try skipSegment()
            }
        }
    }

    /// The next marker code, skipping any bytes before it; nil at the end of the data.
    mutating func nextMarker() throws -> UInt8? {
        while true {
            guard let b = reader.peek() else { return nil }
            try reader.skip(1)
            guard b == 0xFF else { continue }
            // Fill bytes (runs of 0xFF) may precede a marker.
            while reader.peek() == 0xFF { try reader.skip(1) }
            guard let code = reader.peek() else { return nil }
            try reader.skip(1)
            if code != 0 { return code }
        }
    }

    /// A marker segment's payload (after its 2-byte length).
    mutating func segment() throws -> ByteReader {
        let length = try reader.u16be()
        guard length >= 2 else { throw InputError("corrupt JPEG data: marker segment length \(length) < 2") }
        let payload = try reader.take(length - 2)
        return ByteReader(payload, truncatedMessage: "corrupt JPEG data: marker segment shorter than its contents")
    }

    mutating func skipSegment() throws {
        _ = try segment()
    }

    mutating func readAPP0() throws {
        let s = try segment()
        if s.remaining >= 5, Array(s.bytes.prefix(5)) == Array("JFIF\0".utf8) { sawJFIF = true }
    }

    mutating func readAPP14() throws {
        let s = try segment()
        // "Adobe", version, flags0, flags1, transform: libjpeg needs all 12 bytes.
        if s.remaining >= 12, Array(s.bytes.prefix(5)) == Array("Adobe".utf8) {
            adobeTransform = Int(s.bytes[11])
        }
    }

    mutating func readRestartInterval() throws {
        var s = try segment()
        restartInterval = try s.u16be()
    }

    mutating func readQuantTables() throws {
        var s = try segment()
        while !s.isAtEnd {
            let pq = try s.u8()
            let precision = Int(pq >> 4)
            let slot = Int(pq & 15)
            guard precision <= 1, slot < 4 else { throw InputError("corrupt JPEG data: bad DQT table \(pq)") }
            var table = [Int32](repeating: 0, count: 64)
            for k in 0..<64 {
                let q = precision == 0 ? Int(try s.u8()) : try s.u16be()
                // libjpeg keeps islow multipliers in a signed 16-bit type.
                table[jpegNaturalOrder[k]] = Int32(Int16(truncatingIfNeeded: q))
            }
            quantTables[slot] = table
        }
    }

    mutating func readHuffmanTables() throws {
        var s = try segment()
        while !s.isAtEnd {
            let tc = try s.u8()
            let cls = Int(tc >> 4)
            let slot = Int(tc & 15)
            guard cls <= 1, slot < 4 else { throw InputError("corrupt JPEG data: bad DHT table \(tc)") }
            var counts: [Int] = []
            for _ in 0..<16 { counts.append(Int(try s.u8())) }
            let total = counts.reduce(0, +)
            guard total <= 256 else { throw InputError("corrupt JPEG data: Huffman table with \(total) codes") }
            let symbols = Array(try s.take(total))
            let table = try JPEGHuffmanTable(counts: counts, symbols: symbols)
            if cls == 0 { dcTables[slot] = table } else { acTables[slot] = table }
        }
    }

    mutating func readFrame(progressive: Bool) throws {
        guard frame == nil else { throw InputError("unsupported JPEG: more than one frame") }
        var s = try segment()
        let precision = try s.u8()
        let height = try s.u16be()
        let width = try s.u16be()
        let count = Int(try s.u8())
        guard precision == 8 else { throw InputError("unsupported JPEG: \(precision)-bit samples (only 8-bit is supported)") }
        guard height > 0 else { throw InputError("unsupported JPEG: height defined by a DNL marker (0 in the frame header)") }
        try budget.check(width: width, height: height, format: "JPEG")
        guard count == 1 || count == 3 || count == 4 else {
            throw InputError("unsupported JPEG: \(count) components (1, 3 or 4 are supported)")
        }
        var components: [JPEGComponent] = []
        for _ in 0..<count {
            let id = Int(try s.u8())
            let hv = try s.u8()
            let tq = Int(try s.u8())
            let h = Int(hv >> 4)
            let v = Int(hv & 15)
            guard (1...4).contains(h), (1...4).contains(v) else {
                throw InputError("corrupt JPEG data: component \(id) has sampling factors \(h)x\(v)")
            }
            guard tq < 4 else { throw InputError("corrupt JPEG data: component \(id) uses quantisation table \(tq)") }
            guard !components.contains(where: { $0.id == id }) else {
                throw InputError("corrupt JPEG data: component id \(id) appears twice")
            }
            components.append(JPEGComponent(id: id, h: h, v: v, quantIndex: tq))
        }
        // With one component, libjpeg ignores the sampling factors: the component is the image.
        if count == 1 {
            let c = components[0]
            components = [JPEGComponent(id: c.id, h: 1, v: 1, quantIndex: c.quantIndex)]
        }
        frame = try JPEGFrame(width: width, height: height, progressive: progressive, components: components)
    }

    mutating func readScan() throws {
        guard let frame else { throw InputError("corrupt JPEG data: scan before the frame header") }
        var s = try segment()
        let count = Int(try s.u8())
        guard count >= 1, count <= 4 else { throw InputError("corrupt JPEG data: scan with \(count) components") }
        var scanComponents: [JPEGComponent] = []
        for _ in 0..<count {
            let id = Int(try s.u8())
            let tables = try s.u8()
            guard let c = frame.components.first(where: { $0.id == id }) else {
                throw InputError("corrupt JPEG data: scan refers to unknown component \(id)")
            }
            guard !scanComponents.contains(where: { $0 === c }) else {
                throw InputError("corrupt JPEG data: component \(id) appears twice in a scan")
            }
            c.dcTable = Int(tables >> 4)
            c.acTable = Int(tables & 15)
            guard c.dcTable < 4, c.acTable < 4 else { throw InputError("corrupt JPEG data: bad Huffman table selector") }
            scanComponents.append(c)
        }
        let ss = Int(try s.u8())
        let se = Int(try s.u8())
        let a = try s.u8()
        let ah = Int(a >> 4)
        let al = Int(a & 15)
        if count > 1 {
            let blocks = scanComponents.reduce(0) { $0 + $1.h * $1.v }
            guard blocks <= 10 else { throw InputError("corrupt JPEG data: \(blocks) blocks per MCU (at most 10)") }
        }
        if frame.progressive {
            let valid = ss == 0 ? se == 0 : (se >= ss && se <= 63 && count == 1)
            guard valid, ah <= 13, al <= 13, ah == 0 || al == ah - 1 else {
                throw InputError("corrupt JPEG data: invalid progressive scan parameters Ss=\(ss) Se=\(se) Ah=\(ah) Al=\(al)")
            }
        }
        for c in scanComponents where c.quant == nil {
            guard let q = quantTables[c.quantIndex] else {
                throw InputError("corrupt JPEG data: quantisation table \(c.quantIndex) is not defined")
            }
            c.quant = q
        }
        let firstPass = !frame.progressive || (ss == 0 && ah == 0)
        if !buffersAllocated {
            guard firstPass else { throw InputError("corrupt JPEG data: progressive image does not start with a DC scan") }
            // Each block of a first pass costs at least one bit, so a header that claims more
            // blocks than the rest of the file could hold is refused before allocating.
            let blocks = count == 1
                ? scanComponents[0].blocksW * scanComponents[0].blocksH
                : frame.mcusX * frame.mcusY * scanComponents.reduce(0) { $0 + $1.h * $1.v }
            guard blocks / 8 <= reader.remaining else {
                throw DamagedImageError(format: "JPEG", damage: .truncated, offset: bytes.count,
                                        detail: "\(reader.remaining) bytes cannot hold \(blocks) blocks of \(frame.width)x\(frame.height)")
            }
        }
        try allocateBuffers(frame)

        var scan = JPEGScanDecoder(
            frame: frame, components: scanComponents, dcTables: dcTables, acTables: acTables,
            restartInterval: restartInterval, policy: policy,
            reader: JPEGBitReader(data: data, end: bytes.count, position: reader.position, recover: policy.recover))
        if frame.progressive {
            try scan.decodeProgressive(ss: ss, se: se, ah: ah, al: al)
        } else {
            try scan.decodeBaseline()
        }
        reader.seek(to: scan.reader.position)
        scansDecoded += 1
    }

    mutating func allocateBuffers(_ frame: JPEGFrame) throws {
        guard !buffersAllocated else { return }
        for c in frame.components {
            let blocks = try checkedProduct(c.paddedBlocksW, c.paddedBlocksH, "JPEG component")
            let samples = try checkedProduct(blocks, 64, "JPEG component")
            if frame.progressive {
                c.coefficients = try ZeroedBuffer(count: samples, what: "JPEG coefficients")
            } else {
                c.plane = try ZeroedBuffer(count: samples, what: "JPEG samples")
            }
        }
        buffersAllocated = true
    }

    /// The colour space of the components, by libjpeg's rules (JFIF and Adobe markers first,
    /// then component ids).
    func colorSpace(_ frame: JPEGFrame) -> JPEGColorSpace {
        switch frame.components.count {
        case 1: return .grey
        case 3:
            if sawJFIF { return .yCbCr }
            if let t = adobeTransform { return t == 0 ? .rgb : .yCbCr }
            let ids = frame.components.map(\.id)
            return ids == [82, 71, 66] ? .rgb : .yCbCr  // 'R', 'G', 'B'
        default:
            if let t = adobeTransform { return t == 0 ? .cmyk : .yCCK }
            return .cmyk
        }
    }

    func output() throws -> RGBImage {
        guard let frame else { throw InputError("corrupt JPEG data: no frame header") }
        if frame.progressive {
            for c in frame.components { try JPEGScanDecoder.inverseTransformAll(c) }
        }
        return JPEGColorConverter.convert(frame: frame, colorSpace: colorSpace(frame))
    }
}
