//! The config loader (`config::Config::parse`) on any text. Beyond "no panic": an error
//! points at a line and column that exist in the file (both from 1), and a file that loads
//! can be used: every preset it names resolves, every rule resolves for a launch, and every
//! setting prints as text that `Settings::set` reads back to the same setting.
#![no_main]

use std::path::Path;

use corral::config::{Config, ConfigError, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/home/u/.config/corral/config.toml");
    match Config::parse(text, path) {
        Err(ConfigError::Syntax {
            line,
            column,
            message,
            ..
        }) => {
            let lines: Vec<&str> = text.split('\n').collect();
            assert!(line >= 1 && column >= 1, "{line}:{column}: {message}");
            assert!(
                line <= lines.len(),
                "line {line} of {}: {message}",
                lines.len()
            );
            let width = lines[line - 1].chars().count();
            assert!(column <= width + 1, "column {column} of {width}: {message}");
            assert!(!message.is_empty());
        }
        Err(other) => panic!("only located errors come from a file: {other:?}"),
        Ok(config) => {
            for preset in config.presets() {
                let mut again = Settings::default();
                for (key, value) in preset.settings.entries() {
                    if key == "environment" {
                        continue;
                    }
                    again.set(key, &value).unwrap_or_else(|e| {
                        panic!(
                            "preset {}: {key} = {value:?} does not read back: {e}",
                            preset.name
                        )
                    });
                }
                again.environment = preset.settings.environment.clone();
                assert_eq!(again, preset.settings, "preset {}", preset.name);
            }
            let rules: Vec<String> = config.rules().map(|(id, _)| id.to_owned()).collect();
            for id in rules {
                if let Err(e) = config.resolve(&id, None, None, &Settings::default()) {
                    panic!("the rule for {id:?} loaded but does not resolve: {e}");
                }
            }
        }
    }
});
