import MVFormats

/// PNG: every colour type and bit depth, palettes, Adam7 interlacing, the five filters, chunk
/// CRCs and the zlib Adler-32. Converted to RGB as Pillow's `convert("RGB")` does: alpha is
/// dropped (not composited), grey is replicated, palette indices are looked up (indices past
/// the palette give black), low bit depths are scaled to 0…255, and 16-bit samples keep
/// their high byte.
enum PNGDecoder {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    struct Header {
        let width: Int
        let height: Int
        let bitDepth: Int
        let colorType: Int
        let interlaced: Bool

        var channels: Int {
            switch colorType {
            case 0, 3: return 1
            case 2: return 3
            case 4: return 2
            default: return 4
            }
        }

        var bitsPerPixel: Int { channels * bitDepth }
        /// Filters work on whole bytes: the distance to the corresponding byte of the pixel to
        /// the left, at least 1.
        var filterStride: Int { max(1, bitsPerPixel / 8) }

        func rowBytes(_ w: Int) throws -> Int {
            (try checkedProduct(w, bitsPerPixel, "PNG row") + 7) / 8
        }
    }

    /// Adam7: (x0, y0, dx, dy) of each of the seven passes.
    static let adam7: [(Int, Int, Int, Int)] = [
        (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2),
    ]

    static func passes(_ h: Header) -> [(x0: Int, y0: Int, dx: Int, dy: Int, w: Int, h: Int)] {
        let list = h.interlaced ? adam7 : [(0, 0, 1, 1)]
        return list.map { (x0, y0, dx, dy) in
            let w = h.width > x0 ? (h.width - x0 + dx - 1) / dx : 0
            let rows = h.height > y0 ? (h.height - y0 + dy - 1) / dy : 0
            return (x0, y0, dx, dy, w, rows)
        }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, budget: PixelBudget, policy: DamagePolicy) throws -> RGBImage {
        guard bytes.count >= 8, Array(bytes.prefix(8)) == signature else { throw InputError("not a PNG file") }
        var r = ByteReader(bytes, position: 8, truncatedMessage: "the file ends inside a chunk", fileFormat: "PNG")
        var header: Header?
        var palette: [UInt8] = []
        var compressed: [UInt8] = []
        var idatOffset = 0
        var idatEnded = false
        var sawIEND = false

        while !sawIEND {
            let chunkStart = r.position
            if r.isAtEnd, !compressed.isEmpty {
                // Pillow reads the image data without looking for IEND; the policy wants it.
                try policy.found(DamagedImageError(format: "PNG", damage: .truncated, offset: chunkStart,
                                                   detail: "the file ends without an IEND chunk"))
                break
            }
            let length = Int(try r.u32be())
            guard length <= 0x7FFF_FFFF else { throw InputError("corrupt PNG: chunk length \(length)") }
            let typeAndData: UnsafeRawBufferPointer
            do {
                typeAndData = try r.take(try checkedSum(length, 4, "PNG chunk"))
                let storedCRC = try r.u32be()
                if Checksum.crc32(typeAndData) != storedCRC {
                    try policy.found(DamagedImageError(format: "PNG", damage: .badChecksum, offset: chunkStart,
                                                       detail: "CRC mismatch in chunk '\(chunkName(typeAndData))'"))
                }
            } catch let e as DamagedImageError where e.damage == .truncated && policy.recover && !compressed.isEmpty {
                // Recovering, a file cut inside a chunk after the image data began keeps the image
                // data it has (complete if only the CRC or a later chunk was cut).
                try policy.found(e)
                break
            }
            let type = chunkName(typeAndData)
            let data = UnsafeRawBufferPointer(rebasing: typeAndData[4...])
            if header == nil && type != "IHDR" { throw InputError("corrupt PNG: first chunk is '\(type)', not IHDR") }
            if type != "IDAT" && !compressed.isEmpty { idatEnded = true }
            switch type {
            case "IHDR":
                guard header == nil else { throw InputError("corrupt PNG: second IHDR chunk") }
                header = try readHeader(data, budget: budget)
            case "PLTE":
                guard data.count % 3 == 0, data.count <= 768 else {
                    throw InputError("corrupt PNG: palette of \(data.count) bytes")
                }
                palette = Array(data)
            case "IDAT":
                guard !idatEnded else { throw InputError("corrupt PNG: IDAT chunks are not consecutive") }
                if compressed.isEmpty { idatOffset = chunkStart + 8 }
                compressed.append(contentsOf: data)
            case "IEND":
                sawIEND = true
            default:
                break  // ancillary chunks (tRNS, gAMA, text, …) do not change the RGB result
            }
        }
        guard let header else { throw InputError("corrupt PNG: no IHDR chunk") }
        guard !compressed.isEmpty else { throw InputError("corrupt PNG: no image data (IDAT)") }
        if header.colorType == 3 && palette.isEmpty { throw InputError("corrupt PNG: palette image without a PLTE chunk") }

        let passList = passes(header)
        var expected = 0
        for p in passList where p.w > 0 && p.h > 0 {
            let row = try checkedSum(try header.rowBytes(p.w), 1, "PNG image")
            expected = try checkedSum(expected, try checkedProduct(row, p.h, "PNG image"), "PNG image")
        }
        // DEFLATE expands at most 1032:1 (a 258-byte match in 2 bits), so a header claiming
        // more data than that is refused before any buffer is sized from it.
        guard expected / 1032 <= compressed.count + 64 else {
            throw DamagedImageError(format: "PNG", damage: .truncated, offset: nil,
                                    detail: "\(compressed.count) bytes of compressed data cannot hold a \(header.width)x\(header.height) image")
        }
        let raw: InflateOutput
        do {
            raw = try compressed.withUnsafeBytes {
                try Inflate.zlibBuffer($0, maxOutput: expected + 65536, expectedSize: expected) { problem in
                    try policy.found(DamagedImageError(format: "PNG", damage: .badChecksum, offset: nil, detail: "image data: \(problem)"))
                }
            }
        } catch let e as InputError {
            // The offset inside the compressed stream is no byte of the file (IDAT chunks split
            // it), so the damage is placed at the first IDAT's data.
            let truncated = e.message.hasPrefix("truncated")
            throw DamagedImageError(format: "PNG", damage: truncated ? .truncated : .corruptData, offset: idatOffset,
                                    detail: "image data: \(e.message)")
        }
        guard raw.count >= expected else {
            throw DamagedImageError(format: "PNG", damage: .truncated, offset: idatOffset,
                                    detail: "the image data inflates to \(raw.count) bytes, \(expected) needed")
        }
        return try convert(raw: raw, header: header, passes: passList, palette: palette)
    }

    static func chunkName(_ typeAndData: UnsafeRawBufferPointer) -> String {
        String(decoding: typeAndData.prefix(4).map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }

    static func readHeader(_ data: UnsafeRawBufferPointer, budget: PixelBudget) throws -> Header {
        guard data.count == 13 else { throw InputError("corrupt PNG: IHDR is \(data.count) bytes, not 13") }
        var r = ByteReader(data, truncatedMessage: "corrupt PNG: short IHDR")
        let width = Int(try r.u32be())
        let height = Int(try r.u32be())
        let depth = Int(try r.u8())
        let colorType = Int(try r.u8())
        let compression = try r.u8()
        let filter = try r.u8()
        let interlace = try r.u8()
        guard width <= 0x7FFF_FFFF, height <= 0x7FFF_FFFF else { throw InputError("corrupt PNG: size \(width)x\(height)") }
        let allowed: [Int]
        switch colorType {
        case 0: allowed = [1, 2, 4, 8, 16]
        case 3: allowed = [1, 2, 4, 8]
        case 2, 4, 6: allowed = [8, 16]
        default: throw InputError("corrupt PNG: colour type \(colorType)")
        }
        guard allowed.contains(depth) else { throw InputError("corrupt PNG: bit depth \(depth) with colour type \(colorType)") }
        guard compression == 0, filter == 0, interlace <= 1 else {
            throw InputError("corrupt PNG: unknown compression, filter or interlace method")
        }
        try budget.check(width: width, height: height, format: "PNG")
        return Header(width: width, height: height, bitDepth: depth, colorType: colorType, interlaced: interlace == 1)
    }

    /// Undoes the filters of each pass in place and writes the pixels to RGB.
    static func convert(raw: InflateOutput, header: Header,
                        passes: [(x0: Int, y0: Int, dx: Int, dy: Int, w: Int, h: Int)], palette: [UInt8]) throws -> RGBImage
    {
        let width = header.width
        let height = header.height
        let bpp = header.filterStride
        // A full 256-entry table: indices the PLTE does not cover read as black, as in Pillow.
        var lookup = [UInt8](repeating: 0, count: 768)
        for i in 0..<min(palette.count, 768) { lookup[i] = palette[i] }
        let zeroRow = [UInt8](repeating: 0, count: try header.rowBytes(width) + 8)

        var pixels = [UInt8](repeating: 0, count: try checkedProduct(width * height, 3, "PNG image"))
        try pixels.withUnsafeMutableBufferPointer { outBuffer in
            try lookup.withUnsafeBufferPointer { pal in
            try zeroRow.withUnsafeBufferPointer { zeros in
                guard let out = outBuffer.baseAddress, let pal = pal.baseAddress, let zeros = zeros.baseAddress else { return }
                var offset = 0
                for p in passes where p.w > 0 && p.h > 0 {
                    let rowBytes = try header.rowBytes(p.w)
                    var prior: UnsafePointer<UInt8> = zeros
                    for y in 0..<p.h {
                        let filterType = raw.base[offset]
                        let row = raw.base + offset + 1
                        try unfilter(row, prior: prior, count: rowBytes, bpp: bpp, type: filterType)
                        writeRow(row, header: header, palette: pal, count: p.w,
                                 out: out + ((p.y0 + y * p.dy) * width + p.x0) * 3, step: p.dx * 3)
                        prior = UnsafePointer(row)
                        offset += rowBytes + 1
                    }
                }
            }}
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    @inline(__always)
    static func unfilter(_ row: UnsafeMutablePointer<UInt8>, prior: UnsafePointer<UInt8>, count n: Int, bpp: Int, type: UInt8) throws {
        switch type {
        case 0:
            break
        case 1:
            if n > bpp { for i in bpp..<n { row[i] = row[i] &+ row[i - bpp] } }
        case 2:
            for i in 0..<n { row[i] = row[i] &+ prior[i] }
        case 3:
            for i in 0..<min(bpp, n) { row[i] = row[i] &+ prior[i] >> 1 }
            if n > bpp {
                for i in bpp..<n { row[i] = row[i] &+ UInt8((Int(row[i - bpp]) + Int(prior[i])) >> 1) }
            }
        case 4:
            for i in 0..<min(bpp, n) { row[i] = row[i] &+ prior[i] }
            if n > bpp {
                for i in bpp..<n {
                    let a = Int(row[i - bpp]), b = Int(prior[i]), c = Int(prior[i - bpp])
                    let p = a + b - c
                    let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    let predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                    row[i] = row[i] &+ UInt8(predictor)
                }
            }
        default:
            throw InputError("corrupt PNG: unknown filter type \(type)")
        }
    }

    /// Writes `count` pixels of an unfiltered row to `out`, `step` bytes apart.
    @inline(__always)
    static func writeRow(_ row: UnsafePointer<UInt8>, header: Header, palette: UnsafePointer<UInt8>, count: Int,
                         out: UnsafeMutablePointer<UInt8>, step: Int)
    {
        let depth = header.bitDepth
        // Byte offset of the high byte of a sample: 16-bit samples keep their high byte.
        let bytesPerSample = depth == 16 ? 2 : 1
        switch header.colorType {
        case 0, 3:
            let isPalette = header.colorType == 3
            for x in 0..<count {
                let v: Int
                if depth >= 8 {
                    v = Int(row[x * bytesPerSample])
                } else {
                    let bit = x * depth
                    v = Int(row[bit >> 3] >> UInt8(8 - depth - (bit & 7))) & ((1 << depth) - 1)
                }
                let o = out + x * step
                if isPalette {
                    o[0] = palette[3 * v]; o[1] = palette[3 * v + 1]; o[2] = palette[3 * v + 2]
                } else {
                    let g = depth >= 8 ? UInt8(v) : UInt8(v * (255 / ((1 << depth) - 1)))
                    o[0] = g; o[1] = g; o[2] = g
                }
            }
        case 4:
            for x in 0..<count {
                let g = row[x * 2 * bytesPerSample]
                let o = out + x * step
                o[0] = g; o[1] = g; o[2] = g
            }
        default:
            let channels = header.channels
            for x in 0..<count {
                let s = row + x * channels * bytesPerSample
                let o = out + x * step
                o[0] = s[0]; o[1] = s[bytesPerSample]; o[2] = s[2 * bytesPerSample]
            }
        }
    }
}
