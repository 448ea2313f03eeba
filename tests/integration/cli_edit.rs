//! `runcomfy-mcp generate --image`: an edit from a shell. A file named on the command line
//! (relative to the working directory) is the user's own choice and is sent; the edited file is
//! saved like any result. Bad input is refused before anything is submitted.

use std::process::Output;

use crate::common::{saved_paths, Bin};

/// `generate ARGS` on the simulator, run in `cwd` (relative image paths are the user's own).
fn generate(cwd: &std::path::Path, args: &[&str]) -> Output {
    Bin::new(["generate"])
        .args(args)
        .args([
            "--simulate",
            "--poll-first-ms",
            "50",
            "--size",
            "1024x1024",
            "--force-single",
        ])
        .std()
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn solid_png(path: &std::path::Path, rgb: [u8; 3]) {
    image::RgbImage::from_pixel(32, 32, image::Rgb(rgb)).save(path).unwrap();
}

/// A quarter of the way towards the simulator's orange tint (255, 128, 0).
fn tinted(rgb: [u8; 3]) -> [u8; 3] {
    let t = [255u16, 128, 0];
    [0, 1, 2].map(|i| ((u16::from(rgb[i]) * 3 + t[i]) / 4) as u8)
}

#[test]
fn generate_with_an_image_writes_an_edited_file() {
    let dir = tempfile::tempdir().unwrap();
    solid_png(&dir.path().join("photo.png"), [30, 90, 200]);
    let out = dir.path().join("out");
    let output = generate(
        dir.path(),
        &[
            "--image",
            "./photo.png",
            "make it winter",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("request_id"), "{stderr}");
    let paths = saved_paths(&output);
    assert_eq!(paths.len(), 1, "{paths:?}");
    let edited = image::open(&paths[0]).unwrap().to_rgb8();
    assert_eq!(edited.dimensions(), (1024, 1024));
    assert_eq!(
        edited.get_pixel(500, 500).0,
        tinted([30, 90, 200]),
        "drawn from photo.png"
    );
}

#[test]
fn bad_images_are_refused_before_submitting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.png"), b"not an image at all").unwrap();
    for (image, says) in [
        ("http://images.invalid/a.png", "https://"),
        ("./missing.png", "no file"),
        ("./notes.png", "not a PNG, JPEG or WebP"),
    ] {
        let output = generate(dir.path(), &["--image", image, "x"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{image}: {stderr}");
        assert!(
            stderr.contains("images[0]") && stderr.contains(says),
            "{image}: {stderr}"
        );
        let submitted = stderr.lines().any(|line| line.starts_with("request_id "));
        assert!(!submitted, "nothing was submitted: {stderr}");
        assert!(output.stdout.is_empty());
    }
}
