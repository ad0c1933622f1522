fn main() {
    println!("srsd {}", srsd::VERSION);
}
