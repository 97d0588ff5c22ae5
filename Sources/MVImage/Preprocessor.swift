import MVFormats

/// A height and width in pixels.
public struct ImageSize: Sendable, Equatable, CustomStringConvertible {
    public var height: Int
    public var width: Int

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }

    public var description: String { "\(height)x\(width)" }
}

/// Turns an RGB image into the model's input tensor the way Hugging Face transformers'
/// `MobileViTImageProcessor` does: resize (shortest edge, Pillow resampling on uint8), centre
/// crop (zero padding when the image is smaller), rescale, optional normalisation, RGB→BGR,
/// laid out NCHW as [1, 3, H, W].
///
/// Keys missing from a config take the class defaults of transformers 5's
/// MobileViTImageProcessor: shortest edge 224, bicubic, crop 256×256, rescale 1/255, BGR.
/// (transformers 4 defaulted to bilinear; checkpoint configs normally state `resample`, and
/// then that is used.)
public struct Preprocessor: Sendable, Equatable {
    public enum ResizeTarget: Sendable, Equatable {
        /// Scale so the shorter side has this length (aspect ratio kept).
        case shortestEdge(Int)
        /// Scale to exactly this size.
        case exact(ImageSize)
    }

    public var doResize = true
    public var resizeTarget = ResizeTarget.shortestEdge(224)
    public var resample = ResampleFilter.bicubic
    public var doCenterCrop = true
    public var cropSize = ImageSize(height: 256, width: 256)
    public var doRescale = true
    public var rescaleFactor = 1.0 / 255.0
    public var doNormalize = false
    public var imageMean: [Double] = [0.5, 0.5, 0.5]
    public var imageStd: [Double] = [0.5, 0.5, 0.5]
    public var doFlipChannelOrder = true
    /// When set, every image is resized directly to this size with `resample` and not
    /// cropped: for calibrating or running the model at a size other than the config's.
    public var targetSize: ImageSize?
    /// Intermediate (resized) images larger than this are refused: a very elongated input
    /// resized by its short side could otherwise ask for an enormous buffer.
    public var maxResizedPixels = ImageDecoder.defaultMaxPixels
    /// The largest side a config may ask for (resize target or crop), the same bound the CLI puts
    /// on `--size`: larger ones are refused when the config is read, not when memory runs out.
    public static let maxSide = 8192

    public init() {}

    /// Reads a `preprocessor_config.json`.
    public init(configPath: String) throws {
        do {
            try self.init(config: try JSON.parse(try FileSystem.read(configPath)))
        } catch let e as InputError {
            throw e.inFile(configPath)
        }
    }

    public init(config: JSON) throws {
        guard config.object != nil else { throw InputError("preprocessor config is not a JSON object") }
        func bool(_ key: String, _ fallback: Bool) throws -> Bool {
            guard let v = config[key], v != .null else { return fallback }
            guard let b = v.bool else { throw InputError("preprocessor config: \(key) must be true or false") }
            return b
        }
        func side(_ v: JSON?, _ what: String) throws -> Int {
            guard let n = v?.int, n > 0 else { throw InputError("preprocessor config: \(what) must be a positive integer") }
            guard n <= Self.maxSide else { throw InputError("preprocessor config: \(what) \(n) is larger than \(Self.maxSide)") }
            return n
        }
        if let type = config["image_processor_type"]?.string, !type.hasPrefix("MobileViT") {
            throw InputError("preprocessor config: image_processor_type is \(type), expected MobileViTImageProcessor")
        }
        doResize = try bool("do_resize", true)
        if let size = config["size"], size != .null {
            if let n = size.int {
                resizeTarget = .shortestEdge(try side(.number(Double(n)), "size"))
            } else if size["shortest_edge"] != nil {
                guard size["longest_edge"] == nil || size["longest_edge"] == .null else {
                    throw InputError("preprocessor config: size.longest_edge is not supported")
                }
                resizeTarget = .shortestEdge(try side(size["shortest_edge"], "size.shortest_edge"))
            } else if size["height"] != nil || size["width"] != nil {
                resizeTarget = .exact(ImageSize(height: try side(size["height"], "size.height"),
                                                width: try side(size["width"], "size.width")))
            } else {
                throw InputError("preprocessor config: size needs shortest_edge or height and width")
            }
        }
        if let r = config["resample"], r != .null {
            guard let code = r.int else { throw InputError("preprocessor config: resample must be an integer") }
            resample = try ResampleFilter(pillowCode: code)
        }
        doCenterCrop = try bool("do_center_crop", true)
        if let crop = config["crop_size"], crop != .null {
            if let n = crop.int {
                let length = try side(.number(Double(n)), "crop_size")
                cropSize = ImageSize(height: length, width: length)
            } else {
                cropSize = ImageSize(height: try side(crop["height"], "crop_size.height"),
                                     width: try side(crop["width"], "crop_size.width"))
            }
        }
        doRescale = try bool("do_rescale", true)
        if let f = config["rescale_factor"], f != .null {
            // Positive and at most 1e6: 255 · factor then stays far inside float32 (1e308 made
            // every pixel infinite). transformers' value is 1/255.
            guard let v = f.double, v > 0, v <= 1e6 else {
                throw InputError("preprocessor config: rescale_factor must be a number in (0, 1e6], got \(f.serialized())")
            }
            rescaleFactor = v
        }
        doNormalize = try bool("do_normalize", false)
        if doNormalize {
            imageMean = try Self.triple(config["image_mean"], "image_mean", fallback: imageMean)
            imageStd = try Self.triple(config["image_std"], "image_std", fallback: imageStd)
            guard imageStd.allSatisfy({ $0 != 0 }) else { throw InputError("preprocessor config: image_std has a zero") }
        }
        doFlipChannelOrder = try bool("do_flip_channel_order", true)
    }

    private static func triple(_ v: JSON?, _ key: String, fallback: [Double]) throws -> [Double] {
        guard let v, v != .null else { return fallback }
        if let x = v.double { return [x, x, x] }
        guard let a = v.array?.compactMap(\.double), a.count == 3 else {
            throw InputError("preprocessor config: \(key) must be a number or three numbers")
        }
        return a
    }

    /// The output height and width for an input of the given size.
    public func outputSize(forHeight height: Int, width: Int) throws -> ImageSize {
        if let targetSize { return targetSize }
        var size = ImageSize(height: height, width: width)
        if doResize { size = try resizedSize(height: height, width: width) }
        if doCenterCrop { size = cropSize }
        return size
    }

    /// transformers' get_resize_output_image_size with default_to_square=False: the short side
    /// becomes `shortest_edge`, the long side int(shortest_edge · long / short).
    func resizedSize(height: Int, width: Int) throws -> ImageSize {
        switch resizeTarget {
        case .exact(let s):
            return s
        case .shortestEdge(let edge):
            let short = min(height, width)
            let long = max(height, width)
            guard short > 0 else { throw InputError("cannot resize an empty image") }
            let newLong = (Double(edge) * Double(long) / Double(short)).rounded(.towardZero)
            guard newLong < 1e12 else { throw InputError("resized image would be too large") }
            let n = Int(newLong)
            return width <= height ? ImageSize(height: n, width: edge) : ImageSize(height: edge, width: n)
        }
    }

    /// The model input for `image`: NCHW float32 [1, 3, height, width].
    public func pixelValues(for image: RGBImage) throws -> (values: [Float], height: Int, width: Int) {
        var current = image
        if let targetSize {
            current = try resized(current, to: targetSize)
        } else {
            if doResize { current = try resized(current, to: try resizedSize(height: image.height, width: image.width)) }
        }
        let crop = targetSize == nil && doCenterCrop ? cropSize : ImageSize(height: current.height, width: current.width)
        // transformers' center_crop: offsets floor((size − crop) / 2), zero padding where the
        // crop window lies outside the image.
        let top = Self.floorHalf(current.height - crop.height)
        let left = Self.floorHalf(current.width - crop.width)
        // The crop size comes from the config: a hostile one must not allocate without bound.
        let (plane, overflow) = crop.height.multipliedReportingOverflow(by: crop.width)
        guard !overflow, plane <= maxResizedPixels else {
            throw InputError("center crop \(crop.width)x\(crop.height) is more than \(maxResizedPixels) pixels")
        }
        var values = [Float](repeating: 0, count: 3 * plane)
        // With normalisation, padding is normalised too (it is part of the array by then).
        let channelOrder = doFlipChannelOrder ? [2, 1, 0] : [0, 1, 2]
        var lookup = [[Float]](repeating: [], count: 3)
        for c in 0..<3 {
            lookup[c] = (0..<256).map { v in value(Double(v), channel: c) }
        }
        let zero = (0..<3).map { value(0, channel: $0) }
        current.pixels.withUnsafeBufferPointer { px in
            values.withUnsafeMutableBufferPointer { out in
                for (k, c) in channelOrder.enumerated() {
                    let table = lookup[c]
                    let base = k * plane
                    for y in 0..<crop.height {
                        let sy = y + top
                        for x in 0..<crop.width {
                            let sx = x + left
                            if sy >= 0 && sy < current.height && sx >= 0 && sx < current.width {
                                out[base + y * crop.width + x] = table[Int(px[(sy * current.width + sx) * 3 + c])]
                            } else {
                                out[base + y * crop.width + x] = zero[c]
                            }
                        }
                    }
                }
            }
        }
        return (values, crop.height, crop.width)
    }

    /// Decodes a file and preprocesses it.
    public func pixelValues(path: String, maxPixels: Int = ImageDecoder.defaultMaxPixels) throws -> (values: [Float], height: Int, width: Int) {
        try pixelValues(path: path, options: DecodeOptions(maxPixels: maxPixels))
    }

    /// Decodes a file under `options` (the damage policy) and preprocesses it.
    public func pixelValues(path: String, options: DecodeOptions) throws -> (values: [Float], height: Int, width: Int) {
        let image = try ImageDecoder.decode(path: path, options: options)
        do {
            return try pixelValues(for: image)
        } catch let e as InputError {
            throw e.inFile(path)
        }
    }

    /// One sample through rescale and normalise: transformers rescales in float64 and stores
    /// float32, then normalises in float32.
    private func value(_ v: Double, channel c: Int) -> Float {
        var f = Float(doRescale ? v * rescaleFactor : v)
        if doNormalize { f = (f - Float(imageMean[c])) / Float(imageStd[c]) }
        return f
    }

    private static func floorHalf(_ v: Int) -> Int {
        v >= 0 ? v / 2 : -((-v + 1) / 2)
    }

    private func resized(_ image: RGBImage, to size: ImageSize) throws -> RGBImage {
        guard size.height > 0, size.width > 0 else { throw InputError("cannot resize to \(size)") }
        let (pixels, overflow) = size.height.multipliedReportingOverflow(by: size.width)
        guard !overflow, pixels <= maxResizedPixels else {
            throw InputError("resizing \(image.width)x\(image.height) gives \(size.width)x\(size.height), more than \(maxResizedPixels) pixels")
        }
        return try Resize.resize(image, width: size.width, height: size.height, filter: resample)
    }
}
