//! The engine as a test sees it: a project's containers and volumes, listed straight from the
//! `docker` CLI (not through Helvetia), and removing what a test's project left behind.

use std::process::Command;

/// The lines `docker <args> --filter label=io.helvetia.project=<project>` prints.
fn docker_list(args: &[&str], project: &str) -> Vec<String> {
    let output = Command::new("/usr/bin/docker")
        .args(args)
        .arg("--filter")
        .arg(format!("label=io.helvetia.project={project}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Containers (any state) of a project, by name, straight from the engine.
pub fn project_containers(project: &str) -> Vec<String> {
    docker_list(&["ps", "-a", "--format", "{{.Names}}"], project)
}

/// Volumes of a project, by name, straight from the engine.
pub fn project_volumes(project: &str) -> Vec<String> {
    docker_list(&["volume", "ls", "--quiet"], project)
}

/// Removes everything a test's project left in the engine.
pub fn remove_project_objects(project: &str) {
    for name in project_containers(project) {
        let _ = Command::new("/usr/bin/docker")
            .args(["rm", "-f", &name])
            .output();
    }
    for network in docker_list(&["network", "ls", "--format", "{{.Name}}"], project) {
        let _ = Command::new("/usr/bin/docker")
            .args(["network", "rm", &network])
            .output();
    }
    for volume in project_volumes(project) {
        let _ = Command::new("/usr/bin/docker")
            .args(["volume", "rm", "-f", &volume])
            .output();
    }
    let images = Command::new("/usr/bin/docker")
        .args(["images", "-q", "--filter"])
        .arg(format!("label=io.helvetia.project={project}"))
        .output()
        .unwrap();
    for image in String::from_utf8_lossy(&images.stdout).lines() {
        let _ = Command::new("/usr/bin/docker")
            .args(["rmi", "-f", image])
            .output();
    }
}
