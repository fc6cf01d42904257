//! The contract never sends a secret: no field reachable from any RPC's output type is named
//! like a password, a hash or a secret.

use std::collections::HashSet;

use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorSet};

fn find<'a>(set: &'a FileDescriptorSet, full_name: &str) -> Option<&'a DescriptorProto> {
    set.file.iter().find_map(|file| {
        let package = file.package();
        file.message_type
            .iter()
            .find(|m| format!(".{package}.{}", m.name()) == full_name)
    })
}

#[test]
fn no_rpc_output_has_a_field_named_like_a_password_hash_or_secret() {
    let set =
        FileDescriptorSet::decode(bookstore_contract::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut outputs = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                outputs.push(method.output_type().to_string());
            }
        }
    }
    assert!(
        outputs.len() >= 13,
        "every RPC of both packages: {outputs:?}"
    );
    let mut seen = HashSet::new();
    let mut walked = 0;
    while let Some(name) = outputs.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(message) = find(&set, &name) else {
            continue;
        };
        walked += 1;
        for field in &message.field {
            let lower = field.name().to_lowercase();
            for word in ["password", "hash", "secret", "salt", "private"] {
                assert!(
                    !lower.contains(word),
                    "{name}.{} looks like a secret",
                    field.name()
                );
            }
            if !field.type_name().is_empty() {
                outputs.push(field.type_name().to_string());
            }
        }
    }
    assert!(walked >= 15, "walked {walked} messages");
}
