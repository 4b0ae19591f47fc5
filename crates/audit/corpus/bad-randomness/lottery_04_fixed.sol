pragma solidity ^0.4.24;

// Players commit to secrets and reveal them; the draw mixes the revealed secrets.
contract Lottery {
    address[] public players;
    mapping(address => bytes32) public commitments;
    uint256 public mixed;
    address public owner;

    constructor() public {
        owner = msg.sender;
    }

    function enter(bytes32 commitment) public payable {
        require(msg.value == 0.1 ether);
        commitments[msg.sender] = commitment;
        players.push(msg.sender);
    }

    function reveal(uint256 secret) public {
        require(keccak256(msg.sender, secret) == commitments[msg.sender]);
        mixed = uint256(keccak256(mixed, secret));
    }

    function draw() public {
        require(msg.sender == owner);
        uint256 index = mixed % players.length;
        players[index].transfer(this.balance);
        delete players;
    }
}
