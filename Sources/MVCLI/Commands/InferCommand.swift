import MVFormats
import MVModel

let inferCommand = Command(
    name: "infer",
    summary: "Run a model on pixel_values tensors and write the logits to a safetensors file",
    usage: "--model DIR|FILE.mvq --input FILE.safetensors[:TENSOR] --output OUT.safetensors",
    options: [
        OptionSpec(name: "--model", value: "PATH", help: "checkpoint directory (float) or .mvq file (int8)"),
        OptionSpec(name: "--input", value: "FILE[:TENSOR]", help: "float32 NCHW input [N, C, H, W] (default tensor: pixel_values)"),
        OptionSpec(name: "--output", value: "OUT", help: "safetensors file to write: logits, float32 [N, num_labels]"),
    ],
    details: "The input layout is PyTorch's (as in transformers' pixel_values and the golden files)."
) { args in
    let model = try LoadedModel.load(try args.required("--model"))
    let spec = try args.required("--input")
    let output = try args.required("--output")
    var file = spec, tensor = "pixel_values"
    if !FileSystem.exists(spec), let colon = spec.lastIndex(of: ":") {
        file = String(spec[..<colon])
        tensor = String(spec[spec.index(after: colon)...])
    }
    let input = try SafeTensorsFile(path: file)
    let info = try input.info(tensor)
    let c = model.graph.config.numChannels
    let shape = info.shape.count == 3 ? [1] + info.shape : info.shape
    guard shape.count == 4, shape[1] == c else {
        throw InputError("\(file): tensor '\(tensor)' has shape \(info.shape), expected [N, \(c), H, W]")
    }
    let (n, h, w) = (shape[0], shape[2], shape[3])
    guard n >= 1 && n <= 100_000 else { throw InputError("\(file): batch size \(n) out of range") }
    try checkInputSize(h, w)
    let values = try input.floats(tensor)
    let runner = model.makeRunner()
    var logits: [Float] = []
    values.withUnsafeBufferPointer { all in
        for i in 0..<n {
            let image = UnsafeBufferPointer(rebasing: all[(i * c * h * w)..<((i + 1) * c * h * w)])
            logits += runner.logits(nchw: image, height: h, width: w)
        }
    }
    try SafeTensorsWriter.write([.float32("logits", shape: [n, model.labels.count], logits)],
                                metadata: ["model": model.path, "input": spec], to: output)
    return 0
}
