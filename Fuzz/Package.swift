// swift-tools-version: 6.0
// libFuzzer targets for Ingot's parsers and loaders, built apart from the main package because every target is one
// executable without a main (libFuzzer's own main calls LLVMFuzzerTestOneInput). Built and run by tools/fuzz.py:
//
//     swift build --package-path Fuzz -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//     INGOT_FUZZ_TARGET=gguf Fuzz/.build/release/ingot-fuzz CORPUS...
import PackageDescription

let package = Package(
    name: "IngotFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "Ingot", path: "..")],
    targets: [
        .executableTarget(
            name: "ingot-fuzz",
            dependencies: [
                .product(name: "IngotFormats", package: "Ingot"),
                .product(name: "IngotArchitectures", package: "Ingot"),
                .product(name: "IngotModel", package: "Ingot"),
                .product(name: "IngotConvert", package: "Ingot"),
                .product(name: "IngotPack", package: "Ingot"),
                .product(name: "IngotNumerics", package: "Ingot"),
            ]
        ),
    ]
)
