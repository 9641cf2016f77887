// swift-tools-version:6.0
import PackageDescription

// Ingot: one package, one library per pipeline stage, dependencies pointing one way:
//   IngotFormats  <-  IngotModel  <-  ingot (CLI)
//   IngotFormats  <-  IngotPack (libzstd)  <-  ingot
let package = Package(
    name: "Ingot",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ingot", targets: ["ingot"]),
        .library(name: "IngotFormats", targets: ["IngotFormats"]),
        .library(name: "IngotModel", targets: ["IngotModel"]),
        .library(name: "IngotPack", targets: ["IngotPack"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // File formats: byte cursor, GGUF, safetensors, Hugging Face folders, JSON, atomic output.
        .target(name: "IngotFormats"),
        // What a model is (ModelSpec), read from GGUF keys or config.json; inventories of tensors.
        .target(name: "IngotModel", dependencies: ["IngotFormats"]),
        // libzstd from the system (Debian: libzstd-dev).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        // Packed artifacts: per-tensor frames, byte transforms by dtype, zstd, a checksummed index.
        .target(name: "IngotPack", dependencies: ["IngotFormats", "CZstd"]),
        .executableTarget(
            name: "ingot",
            dependencies: [
                "IngotFormats", "IngotModel", "IngotPack",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "IngotFormatsTests", dependencies: ["IngotFormats"]),
        .testTarget(name: "IngotModelTests", dependencies: ["IngotModel", "IngotFormats"]),
        .testTarget(name: "IngotPackTests", dependencies: ["IngotPack", "IngotFormats"]),
    ]
)
