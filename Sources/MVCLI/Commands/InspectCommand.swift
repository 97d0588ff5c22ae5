import MVFormats
import MVModel

let inspectCommand = Command(
    name: "inspect",
    summary: "Describe a model: architecture, parameters, per-layer shapes and multiply-accumulates",
    usage: "--model DIR|FILE.mvq [--size HxW] [--json OUT]",
    options: [
        OptionSpec(name: "--model", value: "PATH", help: "checkpoint directory (float) or .mvq file (int8)"),
        OptionSpec(name: "--size", value: "HxW", help: "input size for shapes and MACs (default: the model's)"),
        OptionSpec(name: "--json", value: "OUT", help: "also write the description as JSON ('-' for stdout)"),
    ],
    details: "For .mvq files it also lists the quantisation parameters per layer and the file's size by section."
) { args in
    let path = try args.required("--model")
    let model = try LoadedModel.load(path)
    let (h, w) = try args.size("--size") ?? model.defaultSize
    try checkInputSize(h, w)
    let graph = model.graph
    let rows = try graph.network.summary(height: h, width: w)
    let totalMACs = rows.reduce(0) { $0 + $1.macs }
    args.report("\(graph.config.variantName) — \(model.kindDescription)")
    args.report("input: \(graph.config.numChannels)×\(h)×\(w), \(graph.config.numLabels) classes, parameters: \(model.parameterCount)")
    args.report("multiply-accumulates at \(h)×\(w): \(totalMACs) (\(fixed(Double(totalMACs) / 1e6, 1)) M)")
    args.report("")
    var table_: [[String]] = [["layer", "kind", "output", "MACs", "params"]]
    for r in rows {
        table_.append([r.name.replacingPrefix("mobilevit.", with: ""), r.kind,
                       r.outputShape.map(String.init).joined(separator: "×"), String(r.macs), String(r.parameters)])
    }
    args.report(table(table_, rightAlign: [3, 4]))
    let extra = model.inspectExtra()
    if !extra.isEmpty { args.report("\n" + extra) }
    if let out = args.value("--json") {
        let layers: [JSON] = rows.map { r in
            ["name": .string(r.name), "kind": .string(r.kind),
             "output_shape": .array(r.outputShape.map { .number(Double($0)) }),
             "macs": .number(Double(r.macs)), "parameters": .number(Double(r.parameters))]
        }
        var report: [(String, JSON)] = [
            ("model", .string(path)), ("architecture", .string(graph.config.variantName)),
            ("kind", .string(model.kindDescription)), ("input", .array([.number(Double(h)), .number(Double(w))])),
            ("parameters", .number(Double(model.parameterCount))), ("macs", .number(Double(totalMACs))),
            ("layers", .array(layers)),
        ]
        report += model.inspectJSON()
        try writeJSON(.object(report), to: out)
    }
    return 0
}

extension String {
    func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
