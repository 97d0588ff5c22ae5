/// I420 (planar YUV 4:2:0) to RGB, ITU-R BT.601, limited ("studio") range, in integer fixed point.
///
/// Layout: the Y plane (width × height bytes), then U (Cb) and V (Cr), each ⌈width/2⌉ × ⌈height/2⌉
/// bytes, rows packed. Each chroma sample covers the 2×2 luma pixels above it (nearest, no
/// interpolation), as most decoders and camera pipelines hand frames over.
///
/// The matrix (Y in 16…235, Cb and Cr in 16…240 centred on 128):
///
///     R = 255/219·(Y − 16)                          + 255/112·0.701·(Cr − 128)
///     G = 255/219·(Y − 16) − 255/112·0.886·0.114/0.587·(Cb − 128) − 255/112·0.701·0.299/0.587·(Cr − 128)
///     B = 255/219·(Y − 16) + 255/112·0.886·(Cb − 128)
///
/// i.e. 1.164383·Y′ + 1.596027·Cr′; 1.164383·Y′ − 0.391762·Cb′ − 0.812968·Cr′; 1.164383·Y′ +
/// 2.017232·Cb′. In fixed point the coefficients are those values × 2¹⁶ rounded to the nearest
/// integer (76309, 104597, 25675, 53279, 132201); each channel is Σ coefficient·sample + 2¹⁵,
/// shifted right by 16 (round half up), clamped to 0…255. The result is within ±1 of the float
/// matrix rounded to nearest (`YUV.referenceRGB`; tested over every sample combination on a grid).
public enum YUV {
    public static let yCoefficient: Int32 = 76309
    public static let crToR: Int32 = 104597
    public static let cbToG: Int32 = 25675
    public static let crToG: Int32 = 53279
    public static let cbToB: Int32 = 132201

    /// Bytes of one I420 frame of the given size.
    public static func i420FrameBytes(width: Int, height: Int) -> Int {
        width * height + 2 * ((width + 1) / 2) * ((height + 1) / 2)
    }

    /// One pixel, fixed point.
    @inline(__always)
    public static func rgb(y: UInt8, cb: UInt8, cr: UInt8) -> (UInt8, UInt8, UInt8) {
        let c = yCoefficient * (Int32(y) - 16) + 32768
        let d = Int32(cb) - 128, e = Int32(cr) - 128
        return (clamp((c + crToR * e) >> 16), clamp((c - cbToG * d - crToG * e) >> 16), clamp((c + cbToB * d) >> 16))
    }

    @inline(__always)
    static func clamp(_ v: Int32) -> UInt8 { UInt8(truncatingIfNeeded: min(max(v, 0), 255)) }

    /// The float matrix rounded to nearest and clamped: the reference the fixed point is tested against.
    public static func referenceRGB(y: UInt8, cb: UInt8, cr: UInt8) -> (UInt8, UInt8, UInt8) {
        let yy = 255.0 / 219.0 * (Double(y) - 16), d = Double(cb) - 128, e = Double(cr) - 128
        let kr = 0.299, kb = 0.114, kg = 1 - kr - kb
        let s = 255.0 / 112.0
        let r = yy + s * (1 - kr) * e
        let g = yy - s * (1 - kb) * kb / kg * d - s * (1 - kr) * kr / kg * e
        let b = yy + s * (1 - kb) * d
        func q(_ v: Double) -> UInt8 { UInt8(min(max(v.rounded(), 0), 255)) }
        return (q(r), q(g), q(b))
    }

    /// Converts one I420 frame (`i420FrameBytes` bytes) to packed RGB (`3·width·height` bytes).
    public static func i420ToRGB(_ frame: UnsafeRawBufferPointer, width: Int, height: Int, into rgb: UnsafeMutableBufferPointer<UInt8>) {
        precondition(width >= 1 && height >= 1 && frame.count >= i420FrameBytes(width: width, height: height)
                     && rgb.count >= 3 * width * height, "I420 frame or RGB buffer too small")
        let cw = (width + 1) / 2, ch = (height + 1) / 2
        let yPlane = frame.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let uPlane = yPlane + width * height, vPlane = uPlane + cw * ch
        let out = rgb.baseAddress!
        for row in 0..<height {
            let yRow = yPlane + row * width, uRow = uPlane + (row / 2) * cw, vRow = vPlane + (row / 2) * cw
            let o = out + row * width * 3
            for x in 0..<width {
                let (r, g, b) = YUV.rgb(y: yRow[x], cb: uRow[x / 2], cr: vRow[x / 2])
                o[3 * x] = r
                o[3 * x + 1] = g
                o[3 * x + 2] = b
            }
        }
    }
}
