import MVFormats

/// A subcommand of `mvquant`.
struct Command: Sendable {
    let name: String
    let summary: String
    let usage: String
    let options: [OptionSpec]
    let details: String
    let run: @Sendable (ParsedArguments) throws -> Int32

    var help: String {
        var s = "\(summary)\n\nUsage: mvquant \(name) \(usage)\n"
        if !options.isEmpty {
            s += "\nOptions:\n"
            let rows = (options + [OptionSpec(name: "--help", value: nil, help: "show this help")]).map { o in
                ["  " + o.name + (o.value.map { " " + $0 } ?? ""), o.help]
            }
            s += table(rows) + "\n"
        }
        if !details.isEmpty { s += "\n" + details + "\n" }
        return s
    }
}

/// Entry point of the `mvquant` command line. Exit codes: 0 ok, 1 usage, 2 bad input or model.
public enum CLI {
    static var commands: [Command] {
        [calibrateCommand, evalCommand, classifyCommand, segmentCommand, inferCommand, streamCommand, benchCommand, inspectCommand, preprocessCommand]
    }

    static var overview: String {
        var s = """
        mvquant: an integer-only int8 runtime for MobileViT (Hugging Face checkpoints → .mvq models).

        Usage: mvquant <command> [options]      mvquant <command> --help

        Commands:

        """
        s += table(commands.map { ["  " + $0.name, $0.summary] }) + "\n"
        s += """

        Exit codes: 0 success, 1 usage error, 2 bad input or model file.
        """
        return s
    }

    public static func main(_ arguments: [String]) -> Int32 {
        guard let first = arguments.first, first != "--help", first != "-h", first != "help" else {
            if arguments.count >= 2, arguments[0] == "help", let c = commands.first(where: { $0.name == arguments[1] }) {
                print(c.help)
            } else {
                print(overview)
            }
            return 0
        }
        guard let command = commands.first(where: { $0.name == first }) else {
            Console.error("mvquant: unknown command '\(first)'. Run 'mvquant --help' for the list.")
            return 1
        }
        let rest = Array(arguments.dropFirst())
        if rest.contains("--help") || rest.contains("-h") {
            print(command.help)
            return 0
        }
        do {
            let parsed = try parseArguments(rest, options: command.options)
            // Files a command will write are checked before its work, which can take minutes:
            // a mistyped directory fails at once.
            for option in command.options where option.value != nil && ["--output", "--json"].contains(option.name) {
                if let path = parsed.value(option.name), path != "-" { try FileSystem.checkCanCreate(path) }
            }
            return try command.run(parsed)
        } catch let e as UsageError {
            Console.error("mvquant \(command.name): \(e.message) (see 'mvquant \(command.name) --help')")
            return 1
        } catch let e as InputError {
            Console.error("mvquant \(command.name): \(e.message)")
            return 2
        } catch {
            Console.error("mvquant \(command.name): \(error)")
            return 2
        }
    }
}
