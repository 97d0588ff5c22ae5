import MVFormats
import MVImage

let preprocessCommand = Command(
    name: "preprocess",
    summary: "Write the pixel_values the model sees for an image (float32 NCHW safetensors)",
    usage: "--model DIR|FILE.mvq IMAGE --output OUT.safetensors [--size HxW]",
    options: [
        OptionSpec(name: "--model", value: "PATH", help: "checkpoint directory or .mvq (for its preprocessor config)"),
        OptionSpec(name: "--output", value: "OUT", help: "safetensors file with pixel_values, float32 [1, 3, H, W]"),
        OptionSpec(name: "--size", value: "HxW", help: "resize straight to H×W instead of resize + centre crop"),
        ImageLoading.recoverOption,
    ],
    details: "Same layout as transformers' MobileViTImageProcessor output (BGR when do_flip_channel_order)."
) { args in
    let model = try LoadedModel.load(try args.required("--model"))
    let output = try args.required("--output")
    guard args.positional.count == 1 else { throw UsageError("give exactly one image") }
    let size = try args.size("--size")
    if let size { try checkInputSize(size.0, size.1) }
    let x = try ImageLoading(args).requiredPixelValues(model.preprocessor(size: size), path: args.positional[0])
    try SafeTensorsWriter.write([.float32("pixel_values", shape: [1, 3, x.height, x.width], x.values)],
                                metadata: ["source": args.positional[0]], to: output)
    return 0
}
