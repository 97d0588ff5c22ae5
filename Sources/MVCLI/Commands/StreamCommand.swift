#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MVFormats
import MVImage
import MVQuantRuntime

let streamCommand = Command(
    name: "stream",
    summary: "Classify raw video frames read from stdin, one JSON line per frame",
    usage: "--model DIR|FILE.mvq --size WxH --format rgb24|i420 [--top K] [--threads N]",
    options: [
        OptionSpec(name: "--model", value: "PATH", help: "checkpoint directory (float) or .mvq (int8); classification models"),
        OptionSpec(name: "--size", value: "WxH", help: "frame width x height (width first, as video tools write it)"),
        OptionSpec(name: "--format", value: "FMT", help: "rgb24 (packed R, G, B; 3·W·H bytes a frame) or i420 (planar YUV 4:2:0, BT.601 limited range; W·H + 2·⌈W/2⌉·⌈H/2⌉ bytes)"),
        OptionSpec(name: "--top", value: "K", help: "labels per frame (default 5)"),
        OptionSpec(name: "--threads", value: "N", help: "threads for the int8 executor (default: number of cores)"),
    ],
    details: """
    Frames are read back to back from stdin; each is answered as soon as it is read with one line on stdout:
    {"frame": n (from 0), "top": [{"label", "index", "probability"}, …], "ms": conversion and inference time}.
    Each frame gets the model's preprocessing, as `classify` gives a decoded image. I420 is converted with
    BT.601 limited-range coefficients in 16-bit fixed point (see the README). A truncated last frame is an
    error (exit 2) after every whole frame has been answered. Example:
      ffmpeg -i video.mp4 -f rawvideo -pix_fmt yuv420p -s 320x240 - | mvquant stream --model m.mvq --size 320x240 --format i420
    """
) { args in
    let (width, height) = try parseFrameSize(try args.required("--size"))
    let format = try args.required("--format")
    guard format == "rgb24" || format == "i420" else { throw UsageError("--format expects rgb24 or i420, got '\(format)'") }
    let k = try args.int("--top", default: 5, range: 1...100_000)
    let threads = try args.int("--threads", default: onlineCPUCount(), range: 1...256)
    try MVQLimits.checkImageSize(width: width, height: height)
    let model = try MVQModel(path: try args.required("--model"))
    let session = try model.makeSession(threads: threads)
    let frameBytes = format == "rgb24" ? 3 * width * height : YUV.i420FrameBytes(width: width, height: height)
    var frame = [UInt8](repeating: 0, count: frameBytes)
    var rgb = format == "rgb24" ? [] : [UInt8](repeating: 0, count: 3 * width * height)
    var logits = [Float](repeating: 0, count: session.logitCount)
    var n = 0
    while true {
        let got = frame.withUnsafeMutableBytes { readFully(0, $0) }
        if got == 0 { break }
        guard got == frameBytes else {
            throw InputError("stdin: truncated frame \(n): \(got) of \(frameBytes) bytes (\(format) \(width)x\(height)); \(n) whole frame(s) answered")
        }
        let start = monotonicSeconds()
        try logits.withUnsafeMutableBufferPointer { out in
            if format == "rgb24" {
                try frame.withUnsafeBytes { try session.run(rgb: $0, width: width, height: height, rowBytes: 3 * width, into: out) }
            } else {
                frame.withUnsafeBytes { f in rgb.withUnsafeMutableBufferPointer { YUV.i420ToRGB(f, width: width, height: height, into: $0) } }
                try rgb.withUnsafeBytes { try session.run(rgb: $0, width: width, height: height, rowBytes: 3 * width, into: out) }
            }
        }
        let ms = (monotonicSeconds() - start) * 1000
        let top = model.top(k, of: logits)
        let line = JSON.object([
            ("frame", .number(Double(n))),
            ("top", .array(top.map { .object([("label", .string($0.label)), ("index", .number(Double($0.index))), ("probability", .number($0.probability))]) })),
            ("ms", .number((ms * 1000).rounded() / 1000)),
        ]).serialized()
        print(line)
        fflush(nil)  // every open stream: `stdout` is a global Swift 6 refuses to name
        n += 1
    }
    return 0
}

/// "WxH" (width first, as ffmpeg's -s), each side 1…16384.
func parseFrameSize(_ s: String) throws -> (Int, Int) {
    let parts = s.lowercased().split(separator: "x", omittingEmptySubsequences: false).map(String.init)
    guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), (1...MVQLimits.maxImageSide).contains(w),
          (1...MVQLimits.maxImageSide).contains(h) else {
        throw UsageError("--size expects WxH (e.g. 640x480) with sides in 1…\(MVQLimits.maxImageSide), got '\(s)'")
    }
    return (w, h)
}

/// Reads until `buffer` is full or end of file; the bytes read (a read error ends it like end of file).
func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
    var done = 0
    while done < buffer.count {
        let r = read(fd, buffer.baseAddress! + done, buffer.count - done)
        if r > 0 {
            done += r
        } else if r == 0 {
            break
        } else if errno != EINTR {
            break
        }
    }
    return done
}
