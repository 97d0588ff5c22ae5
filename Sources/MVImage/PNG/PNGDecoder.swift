import MVFormats

/// PNG: every colour type and bit depth, palettes, Adam7 interlacing, the five filters, chunk
/// CRCs and the zlib Adler-32. Converted to RGB as Pillow's `convert("RGB")` does: alpha is
/// dropped (not composited), grey is replicated, palette indices are looked up (indices past
/// the palette give black), low bit depths are scaled to 0…255, and 16-bit samples keep
/// their high byte. `decodeLabels` gives instead the stored samples of a palette or 8-bit
/// greyscale image (a label mask): palette indices, not colours.
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

    /// One pass of the image data: its first pixel, the spacing of its pixels, and its size.
    typealias Pass = (x0: Int, y0: Int, dx: Int, dy: Int, w: Int, h: Int)

    /// A PNG's chunks read and its image data inflated (still filtered): what both the RGB and
    /// the label decode start from.
    struct ImageData {
        let header: Header
        let palette: [UInt8]
        let passes: [Pass]
        let raw: InflateOutput
    }

    static func passes(_ h: Header) -> [Pass] {
        let list = h.interlaced ? adam7 : [(0, 0, 1, 1)]
        return list.map { (x0, y0, dx, dy) in
            let w = h.width > x0 ? (h.width - x0 + dx - 1) / dx : 0
            let rows = h.height > y0 ? (h.height - y0 + dy - 1) / dy : 0
            return (x0, y0, dx, dy, w, rows)
        }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, budget: PixelBudget, policy: DamagePolicy) throws -> RGBImage {
        try convert(try readImageData(bytes, budget: budget, policy: policy))
    }

    /// Reads the chunks and inflates the image data. `checkHeader` sees the header as soon as
    /// IHDR is read, so a decode can refuse an image kind before any image data is inflated.
    static func readImageData(_ bytes: UnsafeRawBufferPointer, budget: PixelBudget, policy: DamagePolicy,
                              checkHeader: (Header) throws -> Void = { _ in }) throws -> ImageData
    {
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
                let h = try readHeader(data, budget: budget)
                try checkHeader(h)
                header = h
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
        return ImageData(header: header, palette: palette, passes: passList, raw: raw)
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

    /// Undoes the filters of every row in place, pass by pass in file order, handing each row
    /// to `body` with its pass and its row number within the pass.
    static func forEachRow(_ image: ImageData, _ body: (UnsafePointer<UInt8>, Pass, Int) -> Void) throws {
        let header = image.header
        let bpp = header.filterStride
        let zeroRow = [UInt8](repeating: 0, count: try header.rowBytes(header.width) + 8)
        try zeroRow.withUnsafeBufferPointer { zeros in
            guard let zeros = zeros.baseAddress else { return }
            var offset = 0
            for p in image.passes where p.w > 0 && p.h > 0 {
                let rowBytes = try header.rowBytes(p.w)
                var prior: UnsafePointer<UInt8> = zeros
                for y in 0..<p.h {
                    let filterType = image.raw.base[offset]
                    let row = image.raw.base + offset + 1
                    try unfilter(row, prior: prior, count: rowBytes, bpp: bpp, type: filterType)
                    body(UnsafePointer(row), p, y)
                    prior = UnsafePointer(row)
                    offset += rowBytes + 1
                }
            }
        }
    }

    /// Writes the pixels to RGB.
    static func convert(_ image: ImageData) throws -> RGBImage {
        let header = image.header
        let width = header.width
        // A full 256-entry table: indices the PLTE does not cover read as black, as in Pillow.
        var lookup = [UInt8](repeating: 0, count: 768)
        for i in 0..<min(image.palette.count, 768) { lookup[i] = image.palette[i] }

        var pixels = [UInt8](repeating: 0, count: try checkedProduct(width * header.height, 3, "PNG image"))
        try pixels.withUnsafeMutableBufferPointer { outBuffer in
            try lookup.withUnsafeBufferPointer { pal in
                guard let out = outBuffer.baseAddress, let pal = pal.baseAddress else { return }
                try forEachRow(image) { row, p, y in
                    writeRow(row, header: header, palette: pal, count: p.w,
                             out: out + ((p.y0 + y * p.dy) * width + p.x0) * 3, step: p.dx * 3)
                }
            }
        }
        return RGBImage(width: width, height: header.height, pixels: pixels)
    }

    /// What a refused label mask's error says is wanted.
    static let labelMaskRule = "masks must be palette (indexed) or 8-bit greyscale PNGs whose pixel values are the classes"

    /// The kinds of PNG a label mask may be: one sample per pixel, taken as it is stored.
    static func checkLabelHeader(_ h: Header) throws {
        switch (h.colorType, h.bitDepth) {
        case (3, _), (0, 8):
            return
        default:
            let kind: String
            switch h.colorType {
            case 0: kind = "\(h.bitDepth)-bit greyscale"
            case 2: kind = "RGB"
            case 4: kind = "greyscale with alpha"
            default: kind = "RGBA"
            }
            throw InputError("the PNG is \(kind) (colour type \(h.colorType)), not a label mask: \(labelMaskRule)")
        }
    }

    /// The sample plane of a palette or 8-bit greyscale PNG: palette indices as stored (not
    /// looked up, any bit depth), grey values as stored.
    static func decodeLabels(_ bytes: UnsafeRawBufferPointer, budget: PixelBudget, policy: DamagePolicy) throws -> LabelMap {
        let image = try readImageData(bytes, budget: budget, policy: policy, checkHeader: checkLabelHeader)
        let header = image.header
        let width = header.width
        let depth = header.bitDepth
        var labels = [UInt8](repeating: 0, count: width * header.height)
        try labels.withUnsafeMutableBufferPointer { outBuffer in
            guard let out = outBuffer.baseAddress else { return }
            try forEachRow(image) { row, p, y in
                let o = out + (p.y0 + y * p.dy) * width + p.x0
                for x in 0..<p.w { o[x * p.dx] = UInt8(truncatingIfNeeded: sample(row, x, depth: depth)) }
            }
        }
        return LabelMap(width: width, height: header.height, labels: labels)
    }

    /// Sample `x` of a one-sample-per-pixel row (grey or palette): low bit depths unpacked,
    /// 16-bit samples' high byte.
    @inline(__always)
    static func sample(_ row: UnsafePointer<UInt8>, _ x: Int, depth: Int) -> Int {
        switch depth {
        case 8: return Int(row[x])
        case 16: return Int(row[2 * x])
        default:
            let bit = x * depth
            return Int(row[bit >> 3] >> UInt8(8 - depth - (bit & 7))) & ((1 << depth) - 1)
        }
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
                let v = sample(row, x, depth: depth)
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
