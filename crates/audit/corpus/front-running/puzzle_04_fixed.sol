pragma solidity ^0.4.22;

// Solvers first commit to hash(sender, solution), then reveal in a later block.
contract FindThisHash {
    bytes32 constant public hash = 0xb5b5b97fafd9855eec9b41f74dfb6c38f5951141f9a3ecd7f44d5479b630ee0a;
    mapping(address => bytes32) public commitments;
    mapping(address => uint256) public committedAt;

    constructor() public payable {}

    function commit(bytes32 commitment) public {
        commitments[msg.sender] = commitment;
        committedAt[msg.sender] = block.number;
    }

    function reveal(string solution) public {
        require(block.number > committedAt[msg.sender]);
        require(commitments[msg.sender] == keccak256(msg.sender, solution));
        require(hash == keccak256(solution));
        msg.sender.transfer(1000 ether);
    }
}
