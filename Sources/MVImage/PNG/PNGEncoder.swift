import MVFormats

/// PNG writing: 8-bit palette images (label maps) and 8-bit RGB, not interlaced, the image
/// data compressed by `Deflate`.
public enum PNGEncoder {
    /// PNG's largest width or height.
    public static let maxSide = 0x7FFF_FFFF
    /// The image data is split into IDAT chunks of at most this many bytes.
    static let idatChunkSize = 65536

    /// A colour-type-3 PNG: `indices` (row-major, `width * height` of them) into `palette`
    /// (R, G, B bytes of 1 to 256 entries). Every row is sent unfiltered, as the PNG
    /// specification recommends for palette images: a label map's repetition is found by
    /// DEFLATE's matches.
    public static func encodeIndexed(indices: [UInt8], width: Int, height: Int, palette: [UInt8],
                                     level: Int = Deflate.defaultLevel) throws -> [UInt8]
    {
        try checkSize(width, height)
        guard indices.count == width * height else {
            throw InputError("PNG label map: \(indices.count) indices for a \(width)x\(height) image (\(width * height) expected)")
        }
        guard palette.count % 3 == 0, (3...768).contains(palette.count) else {
            throw InputError("PNG palette of \(palette.count) bytes: it must hold 1 to 256 RGB entries (3 bytes each)")
        }
        let entries = palette.count / 3
        if entries < 256, let i = indices.firstIndex(where: { Int($0) >= entries }) {
            throw InputError("PNG label map: index \(indices[i]) at (\(i % width), \(i / width)) is past the \(entries)-entry palette")
        }
        let rowBytes = width
        var raw = [UInt8](repeating: 0, count: try checkedProduct(try checkedSum(rowBytes, 1, "PNG image"), height, "PNG image"))
        raw.withUnsafeMutableBufferPointer { out in
            indices.withUnsafeBufferPointer { src in
                for y in 0..<height {
                    let row = UnsafeMutableBufferPointer(rebasing: out[(y * (rowBytes + 1) + 1)...])
                    _ = row.initialize(from: src[(y * rowBytes)..<((y + 1) * rowBytes)])
                }
            }
        }
        return assemble(width: width, height: height, colorType: 3, palette: palette, raw: raw, level: level)
    }

    /// A colour-type-2 PNG of `image`, each row with the filter whose output has the smallest
    /// sum of absolute values (taken as signed bytes), the PNG specification's heuristic.
    public static func encodeRGB(_ image: RGBImage, level: Int = Deflate.defaultLevel) throws -> [UInt8] {
        let width = image.width
        let height = image.height
        try checkSize(width, height)
        let rowBytes = try checkedProduct(width, 3, "PNG image")
        var raw = [UInt8](repeating: 0, count: try checkedProduct(try checkedSum(rowBytes, 1, "PNG image"), height, "PNG image"))
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: 5 * rowBytes)
        defer { scratch.deallocate() }
        let zeros = [UInt8](repeating: 0, count: rowBytes)
        raw.withUnsafeMutableBufferPointer { out in
            image.pixels.withUnsafeBufferPointer { pixels in
            zeros.withUnsafeBufferPointer { zeros in
                for y in 0..<height {
                    let row = pixels.baseAddress! + y * rowBytes
                    let prior = y > 0 ? row - rowBytes : zeros.baseAddress!
                    let filter = filterRow(row, prior: prior, count: rowBytes, bpp: 3, scratch: scratch)
                    let dst = out.baseAddress! + y * (rowBytes + 1)
                    dst[0] = UInt8(filter)
                    (dst + 1).update(from: scratch + filter * rowBytes, count: rowBytes)
                }
            }}
        }
        return assemble(width: width, height: height, colorType: 2, palette: nil, raw: raw, level: level)
    }

    static func checkSize(_ width: Int, _ height: Int) throws {
        guard (1...maxSide).contains(width), (1...maxSide).contains(height) else {
            throw InputError("PNG size \(width)x\(height): width and height must be 1 to \(maxSide)")
        }
    }

    /// Writes the five filterings of `row` to `scratch` (filter t at `t * count`) and returns
    /// the one with the smallest sum of absolute signed values (the lowest type on ties).
    static func filterRow(_ row: UnsafePointer<UInt8>, prior: UnsafePointer<UInt8>, count n: Int, bpp: Int,
                          scratch: UnsafeMutablePointer<UInt8>) -> Int
    {
        let none = scratch, sub = scratch + n, up = scratch + 2 * n, average = scratch + 3 * n, paeth = scratch + 4 * n
        var s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0
        for i in 0..<n {
            let x = row[i]
            let a = i >= bpp ? row[i - bpp] : 0
            let b = prior[i]
            let c = i >= bpp ? prior[i - bpp] : 0
            let p = Int(a) + Int(b) - Int(c)
            let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
            let predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
            none[i] = x
            sub[i] = x &- a
            up[i] = x &- b
            average[i] = x &- UInt8((Int(a) + Int(b)) >> 1)
            paeth[i] = x &- predictor
            s0 += abs(Int(Int8(bitPattern: none[i])))
            s1 += abs(Int(Int8(bitPattern: sub[i])))
            s2 += abs(Int(Int8(bitPattern: up[i])))
            s3 += abs(Int(Int8(bitPattern: average[i])))
            s4 += abs(Int(Int8(bitPattern: paeth[i])))
        }
        let sums = [s0, s1, s2, s3, s4]
        var best = 0
        for t in 1..<5 where sums[t] < sums[best] { best = t }
        return best
    }

    /// Signature, IHDR, PLTE (palette images), the compressed rows in IDAT chunks, IEND.
    static func assemble(width: Int, height: Int, colorType: UInt8, palette: [UInt8]?, raw: [UInt8], level: Int) -> [UInt8] {
        let compressed = Deflate.compress(raw, level: level)
        var png = PNGDecoder.signature
        png.reserveCapacity(compressed.count + (palette?.count ?? 0) + 128 + compressed.count / idatChunkSize * 12)
        var header = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [8, colorType, 0, 0, 0]  // bit depth, colour type, compression, filter, interlace
        appendChunk("IHDR", header, to: &png)
        if let palette { appendChunk("PLTE", palette, to: &png) }
        var start = 0
        repeat {
            let end = min(start + idatChunkSize, compressed.count)
            appendChunk("IDAT", compressed[start..<end], to: &png)
            start = end
        } while start < compressed.count
        appendChunk("IEND", [], to: &png)
        return png
    }

    static func appendChunk<Data: Collection<UInt8>>(_ type: String, _ data: Data, to png: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        png += bigEndian(UInt32(data.count))
        png += typeBytes
        png += data
        var crc = Checksum.crc32(typeBytes)
        if let contiguous = data.withContiguousStorageIfAvailable({ Checksum.crc32(UnsafeRawBufferPointer($0), continuing: crc) }) {
            crc = contiguous
        } else {
            crc = Checksum.crc32(Array(data), continuing: crc)
        }
        png += bigEndian(crc)
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }
}
