import MVFormats

/// One colour component of a JPEG frame and the memory it decodes into.
final class JPEGComponent {
    let id: Int
    /// Sampling factors (1…4).
    let h: Int
    let v: Int
    let quantIndex: Int

    /// Samples actually present (libjpeg's downsampled_width/height).
    var width = 0
    var height = 0
    /// Blocks covering those samples: what a single-component scan visits.
    var blocksW = 0
    var blocksH = 0
    /// Blocks in the MCU-aligned plane: what interleaved scans visit.
    var paddedBlocksW = 0
    var paddedBlocksH = 0

    /// Upsampling ratios to full resolution (max factor / own factor).
    var ratioH = 1
    var ratioV = 1

    var dcTable = 0
    var acTable = 0
    /// The quantisation table in natural order, latched at the component's first scan as
    /// libjpeg does (a later DQT with the same slot does not affect it).
    var quant: [Int32]?

    /// Decoded samples, `stride` per row, `paddedBlocksH * 8` rows.
    var plane: ZeroedBuffer<UInt8>?
    /// Progressive mode: every block's quantised coefficients, 64 per block, natural order.
    var coefficients: ZeroedBuffer<Int16>?

    var stride: Int { paddedBlocksW * 8 }

    init(id: Int, h: Int, v: Int, quantIndex: Int) {
        self.id = id
        self.h = h
        self.v = v
        self.quantIndex = quantIndex
    }
}

/// What a SOF segment describes, with the geometry derived from it as libjpeg derives it.
struct JPEGFrame {
    let width: Int
    let height: Int
    let progressive: Bool
    let components: [JPEGComponent]
    let maxH: Int
    let maxV: Int
    /// MCUs per row and per column of an interleaved scan.
    let mcusX: Int
    let mcusY: Int

    init(width: Int, height: Int, progressive: Bool, components: [JPEGComponent]) throws {
        self.width = width
        self.height = height
        self.progressive = progressive
        self.components = components
        maxH = components.map(\.h).max() ?? 1
        maxV = components.map(\.v).max() ?? 1
        mcusX = (width + 8 * maxH - 1) / (8 * maxH)
        mcusY = (height + 8 * maxV - 1) / (8 * maxV)
        for c in components {
            // Only whole-number upsampling ratios are supported, as in libjpeg.
            guard maxH % c.h == 0, maxV % c.v == 0 else {
                throw InputError("unsupported JPEG: fractional sampling ratio (component \(c.id) is \(c.h)x\(c.v), maximum \(maxH)x\(maxV))")
            }
            c.width = (width * c.h + maxH - 1) / maxH
            c.height = (height * c.v + maxV - 1) / maxV
            c.blocksW = (c.width + 7) / 8
            c.blocksH = (c.height + 7) / 8
            c.paddedBlocksW = mcusX * c.h
            c.paddedBlocksH = mcusY * c.v
            c.ratioH = maxH / c.h
            c.ratioV = maxV / c.v
        }
    }
}

/// The colour space of the stored components, decided as libjpeg decides it.
enum JPEGColorSpace {
    case grey, yCbCr, rgb, cmyk, yCCK
}

/// JPEG's zigzag scan order: the natural (row-major) index of the k-th coefficient. Sixteen
/// extra entries map to 63 so that a corrupt run past the end lands on the last coefficient,
/// as in libjpeg, instead of outside the block.
let jpegNaturalOrder: [Int] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]
