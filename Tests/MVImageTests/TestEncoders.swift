import MVImage

// Small encoders used to build test inputs. They are written independently of the decoders
// (bitwise CRC, plain Adler sums, stored DEFLATE blocks) so a test does not check the decoder
// against itself.

func testCRC32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

func testAdler32(_ bytes: [UInt8]) -> UInt32 {
    var a: UInt32 = 1
    var b: UInt32 = 0
    for x in bytes {
        a = (a + UInt32(x)) % 65521
        b = (b + a) % 65521
    }
    return b << 16 | a
}

func bigEndian32(_ v: UInt32) -> [UInt8] {
    [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
}

/// A zlib stream of stored (uncompressed) DEFLATE blocks.
func zlibStored(_ data: [UInt8], blockSize: Int = 65535) -> [UInt8] {
    var out: [UInt8] = [0x78, 0x01]
    var i = 0
    repeat {
        let n = min(blockSize, data.count - i)
        let final: UInt8 = i + n >= data.count ? 1 : 0
        out.append(final)
        out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
        out += data[i..<(i + n)]
        i += n
    } while i < data.count
    out += bigEndian32(testAdler32(data))
    return out
}

func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let typeBytes = Array(type.utf8)
    return bigEndian32(UInt32(data.count)) + typeBytes + data + bigEndian32(testCRC32(typeBytes + data))
}

let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

func pngIHDR(width: UInt32, height: UInt32, bitDepth: UInt8, colorType: UInt8, interlace: UInt8 = 0) -> [UInt8] {
    pngChunk("IHDR", bigEndian32(width) + bigEndian32(height) + [bitDepth, colorType, 0, 0, interlace])
}

/// A PNG of `samples` (per pixel, per channel, at `bitDepth`), with every filter type used in
/// turn across rows, optionally Adam7-interlaced.
func makePNG(width: Int, height: Int, bitDepth: Int, colorType: Int, samples: [[[Int]]],
             palette: [UInt8]? = nil, interlaced: Bool = false) -> [UInt8]
{
    let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType] ?? 1
    let bitsPerPixel = channels * bitDepth
    let bpp = max(1, bitsPerPixel / 8)
    let passes: [(Int, Int, Int, Int)] = interlaced
        ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        : [(0, 0, 1, 1)]
    var raw: [UInt8] = []
    var filterType = 0
    for (x0, y0, dx, dy) in passes {
        let xs = Array(stride(from: x0, to: width, by: dx))
        let ys = Array(stride(from: y0, to: height, by: dy))
        if xs.isEmpty || ys.isEmpty { continue }
        var prior = [UInt8](repeating: 0, count: (xs.count * bitsPerPixel + 7) / 8)
        for y in ys {
            // Pack the row's samples.
            var row = [UInt8](repeating: 0, count: prior.count)
            var bit = 0
            for x in xs {
                for v in samples[y][x] {
                    if bitDepth == 16 {
                        row[bit / 8] = UInt8(v >> 8)
                        row[bit / 8 + 1] = UInt8(v & 0xFF)
                    } else {
                        row[bit / 8] |= UInt8(v << (8 - bitDepth - bit % 8) & 0xFF)
                    }
                    bit += bitDepth
                }
            }
            // Forward filter.
            var filtered = [UInt8](repeating: 0, count: row.count)
            for i in 0..<row.count {
                let a = i >= bpp ? Int(row[i - bpp]) : 0
                let b = Int(prior[i])
                let c = i >= bpp ? Int(prior[i - bpp]) : 0
                let predictor: Int
                switch filterType {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                default:
                    let p = a + b - c
                    let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                }
                filtered[i] = UInt8((Int(row[i]) - predictor) & 0xFF)
            }
            raw.append(UInt8(filterType))
            raw += filtered
            prior = row
            filterType = (filterType + 1) % 5
        }
    }
    var png = pngSignature
    png += pngIHDR(width: UInt32(width), height: UInt32(height), bitDepth: UInt8(bitDepth), colorType: UInt8(colorType),
                   interlace: interlaced ? 1 : 0)
    if let palette { png += pngChunk("PLTE", palette) }
    // Split the compressed data over two IDAT chunks to exercise concatenation.
    let z = zlibStored(raw, blockSize: 1000)
    let half = z.count / 2
    png += pngChunk("IDAT", Array(z[..<half]))
    png += pngChunk("IDAT", Array(z[half...]))
    png += pngChunk("IEND", [])
    return png
}

/// A deterministic pseudo-random sequence (64-bit LCG) for test data and corruption positions.
struct TestRandom {
    var state: UInt64

    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 33
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
}
