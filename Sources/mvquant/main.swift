import MVCLI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

exit(CLI.main(Array(CommandLine.arguments.dropFirst())))
