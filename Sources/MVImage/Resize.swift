#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MVFormats

/// Pillow's resampling filters, with Pillow's numeric codes (as `resample` in Hugging Face
/// preprocessor configs).
public enum ResampleFilter: Int, Sendable, CaseIterable {
    case nearest = 0
    case lanczos = 1
    case bilinear = 2
    case bicubic = 3
    case box = 4
    case hamming = 5

    public init(pillowCode: Int) throws {
        guard let f = ResampleFilter(rawValue: pillowCode) else {
            throw InputError("unknown resample filter \(pillowCode) (Pillow codes 0 to 5)")
        }
        self = f
    }

    /// Half-width of the filter kernel at scale 1.
    var support: Double {
        switch self {
        case .nearest, .box: return 0.5
        case .bilinear, .hamming: return 1
        case .bicubic: return 2
        case .lanczos: return 3
        }
    }

    /// The kernel, as Pillow's Resample.c defines it.
    func weight(_ t: Double) -> Double {
        switch self {
        case .nearest, .box:
            return t > -0.5 && t <= 0.5 ? 1 : 0
        case .bilinear:
            let x = abs(t)
            return x < 1 ? 1 - x : 0
        case .hamming:
            let x = abs(t)
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            let px = x * Double.pi
            return sin(px) / px * (0.54 + 0.46 * cos(px))
        case .bicubic:
            // Keys' cubic with a = −0.5.
            let a = -0.5
            let x = abs(t)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            guard t >= -3, t < 3 else { return 0 }
            return Self.sinc(t) * Self.sinc(t / 3)
        }
    }

    private static func sinc(_ t: Double) -> Double {
        if t == 0 { return 1 }
        let x = t * Double.pi
        return sin(x) / x
    }
}

/// Image resizing that reproduces Pillow's `Image.resize` on 8-bit RGB.
///
/// The convolution filters follow Pillow's Resample.c: the kernel is widened by the scale
/// factor when shrinking (so downscaling antialiases), weights are normalised per output
/// pixel and turned into 22-bit fixed point, and the two separable passes each round to 8
/// bits, in the order Pillow 13 chooses. Nearest neighbour follows Pillow's affine scaling,
/// sampling at pixel centres.
public enum Resize {
    /// Fixed-point fraction bits of the weights (Pillow's PRECISION_BITS = 32 − 8 − 2).
    static let precisionBits = 22

    public static func resize(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter) throws -> RGBImage {
        guard width > 0, height > 0 else { throw InputError("cannot resize to an empty image (\(width)x\(height))") }
        guard image.width > 0, image.height > 0 else { throw InputError("cannot resize an empty image") }
        _ = try checkedProduct(try checkedProduct(width, height, "resized image"), 3, "resized image")
        if width == image.width && height == image.height { return image }
        if filter == .nearest { return nearest(image, width: width, height: height) }

        // Pillow 13 runs the vertical pass first when the height shrinks by more than twice
        // as many pixels as the width does (so the second pass has less to do); before that it
        // was always horizontal first. The 8-bit rounding between passes makes the order
        // visible in the result.
        let shrinkH = image.height - height
        let verticalFirst = shrinkH > 0 && shrinkH > 2 * (image.width - width)
        var current = image
        if verticalFirst {
            current = vertical(current, height: height, filter: filter)
            if width != image.width { current = horizontal(current, width: width, filter: filter) }
        } else {
            if width != image.width { current = horizontal(current, width: width, filter: filter) }
            if height != image.height { current = vertical(current, height: height, filter: filter) }
        }
        return current
    }

    /// Per output position: the first input index, the number of taps, and `taps` fixed-point
    /// weights (`stride` apart).
    struct Coefficients {
        var first: [Int]
        var count: [Int]
        var weights: [Int32]
        var stride: Int
    }

    /// Pillow's precompute_coeffs followed by normalize_coeffs_8bpc.
    static func coefficients(inSize: Int, outSize: Int, filter: ResampleFilter) -> Coefficients {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let stride = Int(support.rounded(.up)) * 2 + 1
        var first = [Int](repeating: 0, count: outSize)
        var count = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * stride)
        var k = [Double](repeating: 0, count: stride)
        let inverse = 1 / filterScale
        let one = Double(1 << precisionBits)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            // C's (int) conversion truncates toward zero, as Int(_: Double) does.
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var total = 0.0
            for x in 0..<max(xmax, 0) {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * inverse)
                k[x] = w
                total += w
            }
            for x in 0..<max(xmax, 0) {
                if total != 0 { k[x] /= total }
                let v = k[x] * one
                weights[xx * stride + x] = Int32(v < 0 ? v - 0.5 : v + 0.5)
            }
            first[xx] = xmin
            count[xx] = max(xmax, 0)
        }
        return Coefficients(first: first, count: count, weights: weights, stride: stride)
    }

    /// The rounded, clamped 8-bit value of a fixed-point sum.
    @inline(__always)
    static func clip8(_ sum: Int32) -> UInt8 {
        let v = sum >> Int32(precisionBits)
        return v < 0 ? 0 : (v > 255 ? 255 : UInt8(truncatingIfNeeded: v))
    }

    static func horizontal(_ image: RGBImage, width: Int, filter: ResampleFilter) -> RGBImage {
        let c = coefficients(inSize: image.width, outSize: width, filter: filter)
        let height = image.height
        let inWidth = image.width
        let half = Int32(1 << (precisionBits - 1))
        var out = [UInt8](repeating: 0, count: width * height * 3)
        image.pixels.withUnsafeBufferPointer { src in
        c.weights.withUnsafeBufferPointer { weights in
        out.withUnsafeMutableBufferPointer { dst in
            for y in 0..<height {
                let row = y * inWidth * 3
                for xx in 0..<width {
                    var r = half, g = half, b = half
                    let base = row + c.first[xx] * 3
                    let w = xx * c.stride
                    for x in 0..<c.count[xx] {
                        let k = weights[w + x]
                        r &+= Int32(src[base + 3 * x]) &* k
                        g &+= Int32(src[base + 3 * x + 1]) &* k
                        b &+= Int32(src[base + 3 * x + 2]) &* k
                    }
                    let o = (y * width + xx) * 3
                    dst[o] = clip8(r)
                    dst[o + 1] = clip8(g)
                    dst[o + 2] = clip8(b)
                }
            }
        }}}
        return RGBImage(width: width, height: height, pixels: out)
    }

    static func vertical(_ image: RGBImage, height: Int, filter: ResampleFilter) -> RGBImage {
        let c = coefficients(inSize: image.height, outSize: height, filter: filter)
        let width = image.width
        let rowBytes = width * 3
        let half = Int32(1 << (precisionBits - 1))
        var out = [UInt8](repeating: 0, count: width * height * 3)
        image.pixels.withUnsafeBufferPointer { src in
        c.weights.withUnsafeBufferPointer { weights in
        out.withUnsafeMutableBufferPointer { dst in
            for yy in 0..<height {
                let first = c.first[yy]
                let taps = c.count[yy]
                let w = yy * c.stride
                for i in 0..<rowBytes {
                    var s = half
                    for y in 0..<taps {
                        s &+= Int32(src[(first + y) * rowBytes + i]) &* weights[w + y]
                    }
                    dst[yy * rowBytes + i] = clip8(s)
                }
            }
        }}}
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Pillow's nearest-neighbour resize (ImagingScaleAffine): the source coordinate starts
    /// at half a step and accumulates the step in double precision, then truncates.
    static func nearest(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        let xStep = Double(image.width) / Double(width)
        let yStep = Double(image.height) / Double(height)
        var xs = [Int](repeating: 0, count: width)
        var xo = xStep * 0.5
        for x in 0..<width {
            xs[x] = min(max(Int(xo), 0), image.width - 1)
            xo += xStep
        }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        var yo = yStep * 0.5
        for y in 0..<height {
            let sy = min(max(Int(yo), 0), image.height - 1)
            for x in 0..<width {
                let s = (sy * image.width + xs[x]) * 3
                let o = (y * width + x) * 3
                out[o] = image.pixels[s]
                out[o + 1] = image.pixels[s + 1]
                out[o + 2] = image.pixels[s + 2]
            }
            yo += yStep
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}
