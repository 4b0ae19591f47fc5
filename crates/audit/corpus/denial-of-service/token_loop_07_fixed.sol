pragma solidity ^0.7.0;

interface IERC20 {
    function transfer(address to, uint256 amount) external returns (bool);
}

// Each recipient claims their own tokens.
contract Distributor {
    IERC20 public token;
    mapping(address => uint256) public claimable;
    address public owner;

    constructor(IERC20 _token) {
        token = _token;
        owner = msg.sender;
    }

    function allot(address who, uint256 amount) external {
        require(msg.sender == owner, "owner");
        claimable[who] = amount;
    }

    function claim() external {
        uint256 amount = claimable[msg.sender];
        claimable[msg.sender] = 0;
        require(token.transfer(msg.sender, amount), "transfer");
    }
}
